/**
 * Counters of the publisher, per process (on globalThis so that dev reloads keep them). The app
 * enqueues (outbox rows written in the request's transaction); the outbox relay publishes. A
 * failed publish never fails a request: the row stays in the outbox and is retried, and the
 * failure shows up here, in the relay's log and in the outbox backlog of GET /api/health.
 */
export interface PublishStats {
  /** Outbox rows written by this process (events and control messages). */
  enqueued: number;
  /** Events or control messages not enqueued because they did not match the protocol (a bug here). */
  invalid: number;
  /** Outbox rows this process (a relay) published. */
  published: number;
  /** Failed publish attempts of this process (a relay): the rows are retried with backoff. */
  failed: number;
  /** Rows this process (a relay) gave up on because the publisher refused them for good. */
  refused: number;
  lastFailure: { at: string; channel: string; type: string; error: string } | null;
}

const g = globalThis as typeof globalThis & { __fonanaPublishStats?: PublishStats };

export function publishStats(): PublishStats {
  g.__fonanaPublishStats ??= { enqueued: 0, invalid: 0, published: 0, failed: 0, refused: 0, lastFailure: null };
  return g.__fonanaPublishStats;
}
