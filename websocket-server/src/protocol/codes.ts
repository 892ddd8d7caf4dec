/**
 * Error codes carried by `{"type":"error"}` replies (the connection stays open) and close codes
 * that end a connection. Clients decide what to do from the close code alone, see
 * `closeCodeAction`.
 */

export const ERROR_CODES = [
  'bad_request', // frame is not JSON, not an object, or fails the schema
  'invalid_channel', // channel name malformed or of an unknown kind
  'reserved_channel', // `broadcast`: delivered to every socket by the server, never subscribed
  'forbidden', // channel exists but this user may not read it
  'not_found', // the user, creator or post the channel names does not exist
  'too_many_subscriptions', // per-connection cap reached
  'not_subscribed', // unsubscribe from a channel this connection does not hold
  'rate_limited', // too many subscribes for this user right now; retry after `retryAfterMs`
  'unauthorized', // a `refresh` token that is invalid, expired, revoked or of another user (then close 4001)
  'internal_error', // the server failed while answering; safe to retry with backoff
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const CLOSE_CODES = {
  /** Normal close by either side. */
  normal: 1000,
  /** Server shutting down or restarting: reconnect (with backoff). */
  goingAway: 1001,
  /** Frame larger than the server's maxPayload (sent by ws itself). */
  messageTooBig: 1009,
  /** Unexpected server error: reconnect with backoff. */
  internalError: 1011,
  /** Server is starting or stopping: reconnect with backoff. */
  tryAgainLater: 1013,
  /** Missing, malformed, expired or foreign session token, or unknown user: do not reconnect
   * until the user signs in again (a fresh token). */
  unauthorized: 4001,
  /** The session token's `exp` passed and no `refresh` came in time: fetch a fresh token and
   * reconnect at once (no backoff needed; the session itself may still be valid). */
  sessionExpired: 4002,
  /** The session was ended: signed out in this browser, "sign out everywhere", or the account
   * was deleted. Do not reconnect until the user signs in again. */
  sessionRevoked: 4003,
  /** The client sent frames faster than the server accepts: reconnect after a backoff. */
  rateLimited: 4029,
  /** The client did not read its frames fast enough and the server's send buffer for it
   * overflowed: reconnect after a backoff (events in between are lost). */
  slowConsumer: 4030,
} as const;
export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

export type CloseAction = 'reconnect' | 'reauthenticate' | 'stop';

/**
 * What a client should do after a close. 4001 asks for a new token (sign in again) rather than a
 * blind retry, so an expired session never turns into a reconnect storm. 1000 is a deliberate
 * close. Everything else, including 1006 (connection lost, no close frame), is transient.
 */
export function closeCodeAction(code: number): CloseAction {
  if (code === CLOSE_CODES.unauthorized || code === CLOSE_CODES.sessionExpired) return 'reauthenticate';
  if (code === CLOSE_CODES.normal || code === CLOSE_CODES.sessionRevoked) return 'stop';
  return 'reconnect';
}

/**
 * Close reasons may end with a retry hint, `retry_after_ms=<n>` (1013 from a slow database,
 * 4029, 4030): the client waits at least that long (plus its own jitter) before reconnecting.
 * A close reason is at most 123 bytes, so the text before it stays short.
 */
const RETRY_HINT = /(?:^|; )retry_after_ms=(\d{1,7})$/;

export function closeReasonWithRetry(text: string, retryAfterMs: number): string {
  return `${text.slice(0, 90)}; retry_after_ms=${Math.max(0, Math.round(retryAfterMs))}`;
}

export function retryAfterFromReason(reason: string): number | null {
  const match = RETRY_HINT.exec(reason);
  return match ? Number(match[1]) : null;
}

/** Why the server ended a subscription on its own (`{"type":"unsubscribed","reason":…}`). */
export const UNSUBSCRIBE_REASONS = [
  'forbidden', // access was lost: subscription cancelled or expired, tier changed, refund, post locked or deleted
  'unavailable', // access could not be re-checked (database unreachable): subscribe again later
  'resubscribe', // this node lost continuity (a Redis outage longer than the history): subscribe again at once with `since`
] as const;
export type UnsubscribeReason = (typeof UNSUBSCRIBE_REASONS)[number];
