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
 *                         or closed by the server with 1000) ──retry──▶ connecting
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
  | 'server_closed';

export interface ConnectionSnapshot {
  readonly state: ConnectionState;
  /** Failed attempts since the socket was last open. */
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
