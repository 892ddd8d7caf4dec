/**
 * Counters of the publisher, per process (on globalThis so that dev reloads keep them). A
 * failed publish never fails the request that caused it; it shows up here and in the log.
 */
export interface PublishStats {
  published: number;
  failed: number;
  /** Events not sent because their data did not match the protocol schema (a bug here). */
  invalid: number;
  lastFailure: { at: string; channel: string; type: string; error: string } | null;
}

const g = globalThis as typeof globalThis & { __fonanaPublishStats?: PublishStats };

export function publishStats(): PublishStats {
  g.__fonanaPublishStats ??= { published: 0, failed: 0, invalid: 0, lastFailure: null };
  return g.__fonanaPublishStats;
}
