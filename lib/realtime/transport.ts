/**
 * How an event leaves this process. Two implementations, chosen by configuration: Redis PUBLISH
 * (every WebSocket node subscribed to the prefix receives it) and the WebSocket server's
 * `POST /publish` (the single-machine default, where the server's broker is in-process).
 *
 * Both send the same JSON, `{type, data, id}`, which the server validates against the protocol
 * module before fanning it out.
 */
export interface Transport {
  readonly kind: 'redis' | 'http';
  /**
   * Sends one event to every channel in `channels` with one serialization and one round trip
   * (a Redis pipeline, or one POST /publish naming them all). Resolves once the broker (or the
   * server) accepted it on every channel; rejects otherwise.
   */
  send(channels: readonly string[], payload: { type: string; data: unknown; id: string }): Promise<void>;
}

/** Longest a publish may hold up the API request that triggered it (ms). */
export const PUBLISH_TIMEOUT_MS = 2_000;
