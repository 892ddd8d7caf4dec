/**
 * The connection state machine of the tab's socket. Every change goes through
 * `RealtimeClient#setState`, which checks it against `TRANSITIONS`, so the states below are
 * the whole story:
 *
 *   connecting ──connected──▶ open ──lost──▶ reconnecting ──connected──▶ open
 *        │                     │                 │  (each retry after a full-jitter delay)
 *        └──────────┬──────────┴─────────────────┘
 *                   ▼
 *                closed  (stopped, 10 failed attempts, refused twice with 4001, signed out,
 *                         session revoked (4003), or closed by the server with 1000)
 *                         ──retry (only after giving up) or start──▶ connecting
 *
 * A session refresh (`refresh` / `refreshed`, see session-refresh.ts) changes nothing here: the
 * socket stays 'open' through it.
 *
 * Components use the state to decide between live updates and HTTP polling: anything but
 * 'open' means "poll".
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export type ClosedReason =
  /** stop() was called (the provider unmounted). */
  | 'stopped'
  /** maxAttempts consecutive attempts failed: HTTP polling until a probe or retry succeeds. */
  | 'gave_up'
  /** The server refused the session (4001) even with a fresh token. */
  | 'unauthorized'
  /** /api/realtime/token answered 401: the session cookie is gone. */
  | 'signed_out'
  /** The server closed with 1000, a deliberate close. */
  | 'server_closed'
  /** The server closed with 4003: signed out (here or everywhere) or the account was deleted.
   * Nothing reconnects until the user signs in again (a new provider, a new client). */
  | 'session_revoked';

export interface ConnectionSnapshot {
  readonly state: ConnectionState;
  /**
   * The retry being waited for or in flight; 0 while open. It keeps counting across connections
   * that closed before staying open for `stableAfterMs`, so a server that accepts and then closes
   * at once is retried with growing delays.
   */
  readonly attempt: number;
  readonly closedReason: ClosedReason | null;
  /** Close code of the last socket, for display and debugging. */
  readonly lastCloseCode: number | null;
}

export const TRANSITIONS: Record<ConnectionState, readonly ConnectionState[]> = {
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  // reconnecting → reconnecting: a new attempt (the attempt counter changes).
  reconnecting: ['reconnecting', 'open', 'closed'],
  closed: ['connecting'],
};

export const INITIAL_SNAPSHOT: ConnectionSnapshot = { state: 'closed', attempt: 0, closedReason: 'stopped', lastCloseCode: null };
