/**
 * Keeps an open socket's session alive in place. The server says in `connected` (and in each
 * `refreshed`) when the session token it holds expires; shortly before that this sends
 * `{"type":"refresh","token":T}` with a fresh token of the same user, and the socket goes on
 * ('open' all along, no resubscribe, nothing missed). Without a refresh the server closes with
 * 4002 at expiry; the client then reconnects at once with a fresh endpoint (client.ts).
 *
 * A refresh is impossible when the endpoint has no token (same origin behind nginx: the cookie
 * authenticated the upgrade and a frame cannot carry it) or hands back the token the socket
 * already has; then nothing is sent and the 4002 path does the work. An `unauthorized` reply is
 * followed by the server's 4001, handled by the client's reauthenticate path.
 */
import type { ErrorFrame, RefreshedFrame, RequestId } from '@/websocket-server/src/protocol/index.ts';
import { SignedOutError } from './endpoint.ts';

/**
 * The margin before expiry is max(minMarginMs, marginRatio · remaining), but never more than
 * half the remaining time, so that a short-lived token is not refreshed in a tight loop.
 */
export interface RefreshPolicy {
  /** Refresh at least this long before expiry (ms). */
  minMarginMs: number;
  /** Or this share of the remaining lifetime, whichever is longer. */
  marginRatio: number;
  /** Up to this share of the wait is taken off at random, so tabs do not refresh together. */
  jitterRatio: number;
}

export const DEFAULT_REFRESH: RefreshPolicy = { minMarginMs: 5_000, marginRatio: 0.25, jitterRatio: 0.1 };

/** Failed refreshes (rate_limited, internal_error, endpoint down) retried per expiry, at most. */
const MAX_RETRIES = 4;
/** Shortest wait before retrying a failed refresh (ms). */
const MIN_RETRY_MS = 250;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long to wait (ms) before refreshing a session with `remainingMs` left: the remaining time
 * less a margin of max(minMarginMs, marginRatio · remaining), capped at half the remaining time,
 * less up to jitterRatio of that wait at random. 5 min left → about 3 min 45 s (3 min 22 s to
 * 3 min 45 s); 3 s left → about 1.5 s.
 */
export function refreshDelay(remainingMs: number, policy: RefreshPolicy = DEFAULT_REFRESH, random: () => number = Math.random): number {
  if (!(remainingMs > 0)) return 0;
  const margin = Math.min(remainingMs / 2, Math.max(policy.minMarginMs, remainingMs * policy.marginRatio));
  const wait = remainingMs - margin;
  return Math.max(0, Math.floor(wait - random() * policy.jitterRatio * wait));
}

export interface SessionRefreshHost {
  /** A fresh token from the endpoint source (`{fresh: true}`); null when it has none. */
  freshToken(): Promise<string | null>;
  /** Sends the refresh frame; its request id, or null when the socket is not open. */
  sendRefresh(token: string): RequestId | null;
  /** The token endpoint answered 401: the user is signed out. */
  signedOut(): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

export class SessionRefresh {
  readonly #host: SessionRefreshHost;
  readonly #policy: RefreshPolicy;
  readonly #random: () => number;
  /** The token the server holds for this socket; null: the cookie (no refresh in place). */
  #token: string | null = null;
  #expiresAt: number | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending: { id: RequestId; token: string } | null = null;
  #retries = 0;
  /** Bumped by start/stop, so that a token fetch that outlived its socket does nothing. */
  #generation = 0;

  constructor(host: SessionRefreshHost, policy: RefreshPolicy = DEFAULT_REFRESH, random: () => number = Math.random) {
    this.#host = host;
    this.#policy = policy;
    this.#random = random;
  }

  /** When the server holds the session until (ms), or null (an older server that did not say). */
  get expiresAt(): number | null {
    return this.#expiresAt;
  }

  /** The socket is open with `token` (null: cookie) until `expiresAt` (undefined: no expiry given). */
  start(token: string | null, expiresAt: number | undefined): void {
    this.stop();
    this.#token = token;
    this.#expiresAt = typeof expiresAt === 'number' && Number.isFinite(expiresAt) ? expiresAt : null;
    this.#schedule(refreshDelay(this.#remaining(), this.#policy, this.#random));
  }

  stop(): void {
    this.#generation++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = null;
    this.#retries = 0;
    this.#expiresAt = null;
  }

  /** The `refreshed` reply; false when it answers no refresh of ours. */
  onRefreshed(frame: RefreshedFrame): boolean {
    const pending = this.#pending;
    if (!pending || (frame.id !== undefined && frame.id !== pending.id)) return false;
    this.#pending = null;
    this.#retries = 0;
    this.#token = pending.token;
    const previous = this.#expiresAt;
    if (typeof frame.expiresAt !== 'number' || (previous !== null && frame.expiresAt <= previous)) {
      // Refreshing again would only get the same answer, in a loop.
      this.#log('the refresh did not extend the session; the server will close with 4002 at expiry', { expiresAt: frame.expiresAt });
      return true;
    }
    this.#expiresAt = frame.expiresAt;
    this.#schedule(refreshDelay(this.#remaining(), this.#policy, this.#random));
    return true;
  }

  /** An error reply; false when it answers no refresh of ours. */
  onError(frame: ErrorFrame): boolean {
    const pending = this.#pending;
    if (!pending || frame.id === undefined || frame.id !== pending.id) return false;
    this.#pending = null;
    if (frame.code === 'rate_limited' || frame.code === 'internal_error') {
      this.#retryLater(frame.retryAfterMs, frame.code);
    } else {
      // `unauthorized` is followed by the server's 4001; anything else (an older server that
      // does not know `refresh`) would fail again.
      this.#log('refresh refused', { code: frame.code, message: frame.message });
    }
    return true;
  }

  #remaining(): number {
    return this.#expiresAt === null ? Number.NaN : this.#expiresAt - Date.now();
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#expiresAt === null) return;
    if (this.#token === null) {
      this.#log('no token to refresh with (cookie authentication); the server closes with 4002 at expiry', { expiresAt: this.#expiresAt });
      return;
    }
    const dueAt = Date.now() + delay;
    const arm = (wait: number) => {
      // Timers cannot wait longer than 2^31 - 1 ms (~24.8 days); a longer wait is re-armed.
      this.#timer = setTimeout(() => {
        const left = dueAt - Date.now();
        if (left > 1_000) arm(left);
        else void this.#refresh();
      }, Math.min(wait, MAX_TIMER_MS));
    };
    arm(delay);
  }

  /** After a failed refresh: again after a while, if that is still before expiry. */
  #retryLater(floorMs: number | undefined, why: string): void {
    const remaining = this.#remaining();
    const delay = Math.max(floorMs ?? 0, MIN_RETRY_MS, refreshDelay(remaining, this.#policy, this.#random));
    if (++this.#retries > MAX_RETRIES || !(remaining - delay > 0)) {
      this.#log('giving up refreshing; the server closes with 4002 at expiry', { why, retries: this.#retries - 1 });
      return;
    }
    this.#log('refresh failed; retrying', { why, delayMs: delay });
    this.#schedule(delay);
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    const generation = this.#generation;
    let token: string | null;
    try {
      token = await this.#host.freshToken();
    } catch (error) {
      if (generation !== this.#generation) return;
      if (error instanceof SignedOutError) {
        this.#host.signedOut();
        return;
      }
      this.#retryLater(undefined, `no fresh token: ${(error as Error).message}`);
      return;
    }
    if (generation !== this.#generation) return;
    if (token === null || token === this.#token) {
      this.#log('the endpoint has no new token; the server closes with 4002 at expiry');
      return;
    }
    const id = this.#host.sendRefresh(token);
    if (id !== null) this.#pending = { id, token };
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#host.log(message, fields);
  }
}
