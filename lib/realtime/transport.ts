/**
 * How an event leaves this process. Two implementations, chosen by configuration: Redis PUBLISH
 * (every WebSocket node subscribed to the prefix receives it) and the WebSocket server's
 * `POST /publish` (the single-machine default, where the server's broker is in-process).
 *
 * Both send the same JSON, `{type, data, id}`, which the server validates against the protocol
 * module before fanning it out. Control messages (sign-outs, entitlement changes; see
 * websocket-server/src/protocol/control.ts) go on the reserved `$control` channel instead.
 */
import type { ControlMessage } from '@/websocket-server/src/protocol/index.ts';

export interface Transport {
  readonly kind: 'redis' | 'http';
  /**
   * Sends one event to every channel in `channels` with one serialization and one round trip
   * (a Redis pipeline, or one POST /publish naming them all). Resolves once the broker (or the
   * server) accepted it on every channel; rejects otherwise.
   */
  send(channels: readonly string[], payload: { type: string; data: unknown; id: string }): Promise<void>;
  /**
   * Sends one control message to every WebSocket node: Redis `PUBLISH <prefix>$control`, or
   * `POST /control`. Resolves once the broker (or the server, 202) took it; rejects otherwise.
   * The message has been validated by the caller.
   */
  sendControl(message: ControlMessage): Promise<void>;
}

/** Longest a publish may hold up the API request that triggered it (ms). */
export const PUBLISH_TIMEOUT_MS = 2_000;
