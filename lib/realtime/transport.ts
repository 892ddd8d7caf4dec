/**
 * How an event leaves for the WebSocket nodes. Three implementations, chosen by configuration:
 * a Redis Cluster (redis-cluster-transport.ts: the same script with SPUBLISH, REDIS_CLUSTER_NODES),
 * Redis (the history script: the channel's next offset, the capped stream and the PUBLISH, in
 * one step; every node subscribed to the prefix receives it) and the WebSocket server's
 * `POST /publish` (the single-machine default, where the server's broker is in-process and
 * keeps the history itself).
 *
 * Only the outbox relay (outbox-relay.ts) sends events; API routes enqueue them in their
 * transaction (lib/realtime.ts). Both transports send the same JSON, `{type, data, id, ts?}`,
 * which the server validates against the protocol module before fanning it out. Control
 * messages (sign-outs, entitlement changes; see websocket-server/src/protocol/control.ts) go on
 * the reserved `$control` channel instead, without history.
 */
import type { ControlMessage, StreamPosition } from '@/websocket-server/src/protocol/index.ts';

export interface EventPayload {
  type: string;
  data: unknown;
  /** Stable across retries (the outbox row's eventId): subscribers drop a copy they have seen. */
  id: string;
  /** When the event happened (ms); Redis keeps it with the event, POST /publish stamps its own. */
  ts?: number;
}

export interface Transport {
  readonly kind: 'redis' | 'redis-cluster' | 'http';
  /**
   * Sends one event to every channel in `channels` (at most MAX_PUBLISH_CHANNELS) with one
   * serialization and one round trip (a Redis pipeline, or one POST /publish naming them all).
   * Resolves once the broker (or the server) accepted it on every channel; rejects otherwise,
   * with a PublishRefusedError when retrying cannot help.
   */
  send(channels: readonly string[], payload: EventPayload): Promise<void>;
  /**
   * Sends one control message to every WebSocket node: Redis `PUBLISH <prefix>$control`, or
   * `POST /control`. Resolves once the broker (or the server, 202) took it; rejects otherwise.
   * The message has been validated by the caller.
   */
  sendControl(message: ControlMessage): Promise<void>;
  /** The channel's position now (`{offset, epoch}`), for a page that renders from the database. */
  position(channel: string): Promise<StreamPosition>;
  /** Releases connections (the relay's shutdown). */
  close(): Promise<void>;
}

/**
 * The publisher refused the event for good (POST /publish answered 400 or 413: a body the
 * protocol rejects, or one too large): sending it again cannot succeed, so the relay gives up
 * on it instead of retrying it for ever.
 */
export class PublishRefusedError extends Error {
  override readonly name = 'PublishRefusedError';
}

/** Longest one publish (or position read) may take before it counts as failed (ms). */
export const PUBLISH_TIMEOUT_MS = 2_000;
