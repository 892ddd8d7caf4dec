/**
 * One channel on the tab's socket, with its own small state machine (as centrifuge-js keeps a
 * Subscription beside its Centrifuge client). The client owns the socket and routes each reply
 * for the channel here; this decides what the reply means:
 *
 *   idle ──socket open──▶ subscribing ──subscribed──▶ subscribed ──unsubscribed+reason──▶ revoked
 *                           │     ▲
 *      internal_error,      ▼     │ after a full-jitter delay
 *      rate_limited ──▶ retry_wait   (at most `maxRetries` times in a row)
 *                           │
 *   any other error, or ────┴──────────────────────────────────────────────────────────▶ refused
 *   retries used up
 *
 * Every phase goes back to idle when the socket is lost, and the next socket asks again: refused
 * and revoked channels are not asked again on the same socket (the user may subscribe or buy
 * meanwhile; the next connection finds out).
 *
 * The status components see (`ChannelStatus`) is the server's last word: 'pending' until it
 * answers on the current socket, 'subscribed', or 'error' with the code (`forbidden` for a
 * revoked channel too).
 */
import type { ErrorFrame, PushFrame, RequestId, UnsubscribeReason } from '@/websocket-server/src/protocol/index.ts';
import { DEFAULT_BACKOFF, retryDelay, type BackoffOptions } from './backoff.ts';

export interface ChannelListener {
  onEvent(frame: PushFrame): void;
  /** Each time the server confirms the subscription: first subscribe and every resubscribe. */
  onSubscribed?(): void;
  /** The server refused the channel (forbidden, not_found, …, or a retryable error whose retries
   * ran out). It is not retried on the same socket; the next reconnect asks again, by then the
   * user may have subscribed or bought. */
  onError?(error: ErrorFrame): void;
  /** The server ended the subscription itself because access was lost (subscription cancelled,
   * post locked, …). Nothing more of the channel arrives; not asked again on the same socket. */
  onRevoked?(reason: UnsubscribeReason, message: string): void;
}

export type ChannelStatus =
  | { status: 'pending' }
  | { status: 'subscribed' }
  | { status: 'error'; code: string; message: string };

export type SubscriptionPhase = 'idle' | 'subscribing' | 'retry_wait' | 'subscribed' | 'refused' | 'revoked';

const TRANSITIONS: Record<SubscriptionPhase, readonly SubscriptionPhase[]> = {
  idle: ['subscribing'],
  subscribing: ['subscribed', 'retry_wait', 'refused', 'revoked', 'idle'],
  retry_wait: ['subscribing', 'idle'],
  subscribed: ['revoked', 'idle'],
  refused: ['idle'],
  revoked: ['idle'],
};

/** Replies worth asking again for: the server failed or is busy, not a decision about access. */
const RETRYABLE = new Set<string>(['internal_error', 'rate_limited']);

export const PENDING: ChannelStatus = { status: 'pending' };
const SUBSCRIBED: ChannelStatus = { status: 'subscribed' };

export interface SubscriptionHost {
  /** Sends `subscribe`; its request id, or null when the socket is not open. */
  sendSubscribe(channel: string): RequestId | null;
  sendUnsubscribe(channel: string): void;
  /** The status changed (for useSyncExternalStore). */
  statusChanged(): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

export interface SubscriptionRetry {
  backoff: BackoffOptions;
  /** Retries of a retryable refusal before the channel stays in error. */
  maxRetries: number;
  random: () => number;
}

export const DEFAULT_SUBSCRIPTION_RETRY: SubscriptionRetry = { backoff: DEFAULT_BACKOFF, maxRetries: 5, random: Math.random };

export class Subscription {
  readonly channel: string;
  readonly listeners = new Set<ChannelListener>();
  /** Set while the channel has no listener and waits to be dropped (see RealtimeClient). */
  linger: ReturnType<typeof setTimeout> | undefined;
  readonly #host: SubscriptionHost;
  readonly #retry: SubscriptionRetry;
  #phase: SubscriptionPhase = 'idle';
  #status: ChannelStatus = PENDING;
  #requestId: RequestId | null = null;
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(channel: string, host: SubscriptionHost, retry: SubscriptionRetry = DEFAULT_SUBSCRIPTION_RETRY) {
    this.channel = channel;
    this.#host = host;
    this.#retry = retry;
  }

  get phase(): SubscriptionPhase {
    return this.#phase;
  }

  /** Replaced, never mutated: its identity is a valid useSyncExternalStore snapshot. */
  get status(): ChannelStatus {
    return this.#status;
  }

  /** Whether the server holds, or is about to hold, this channel for the socket. */
  get held(): boolean {
    return this.#phase === 'subscribing' || this.#phase === 'subscribed';
  }

  addListener(listener: ChannelListener): void {
    this.listeners.add(listener);
    // Joined an already live channel: tell this listener as the server told the others.
    if (this.#phase === 'subscribed') queueMicrotask(() => this.listeners.has(listener) && listener.onSubscribed?.());
  }

  /** A socket is open (the first, or a new one after a reconnect): ask from scratch. */
  open(): void {
    this.#toIdle();
    this.#retries = 0;
    this.#setStatus(PENDING);
    this.#ask();
  }

  /** The socket is gone. The status stays the last thing the server said until the next one. */
  close(): void {
    this.#toIdle();
  }

  /** The client stopped: nothing is known any more. */
  reset(): void {
    this.#toIdle();
    this.#setStatus(PENDING);
  }

  /** Dropped (no listener left): tell the server if it holds the channel. */
  dispose(): void {
    if (this.held) this.#host.sendUnsubscribe(this.channel);
    this.#toIdle();
  }

  onSubscribed(id: RequestId | undefined): void {
    if (this.#phase !== 'subscribing' || !this.#answers(id)) return;
    this.#go('subscribed');
    this.#retries = 0;
    this.#setStatus(SUBSCRIBED);
    for (const listener of [...this.listeners]) this.#call(() => listener.onSubscribed?.());
  }

  onError(error: ErrorFrame): void {
    if (this.#phase !== 'subscribing' || !this.#answers(error.id)) return;
    if (RETRYABLE.has(error.code) && this.#retries < this.#retry.maxRetries) {
      const delay = retryDelay(this.#retries, error.retryAfterMs, this.#retry.backoff, this.#retry.random);
      this.#retries++;
      this.#go('retry_wait');
      this.#host.log('subscribe failed; retrying', { channel: this.channel, code: error.code, retry: this.#retries, delayMs: delay });
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        if (this.#phase === 'retry_wait') this.#ask();
      }, delay);
      return;
    }
    this.#go('refused');
    this.#setStatus({ status: 'error', code: error.code, message: error.message });
    for (const listener of [...this.listeners]) this.#call(() => listener.onError?.(error));
  }

  /** The server's own `unsubscribed` with a reason (no id): access was lost. */
  onRevoked(reason: UnsubscribeReason, message: string): void {
    if (!this.held) return;
    this.#go('revoked');
    this.#setStatus({ status: 'error', code: reason, message });
    for (const listener of [...this.listeners]) this.#call(() => listener.onRevoked?.(reason, message));
  }

  /** A push of this channel; dropped unless the server confirmed the subscription. */
  deliver(frame: PushFrame): void {
    if (this.#phase !== 'subscribed') return;
    for (const listener of [...this.listeners]) this.#call(() => listener.onEvent(frame));
  }

  #ask(): void {
    const id = this.#host.sendSubscribe(this.channel);
    if (id === null) return;
    this.#requestId = id;
    this.#go('subscribing');
  }

  /** Replies carry the id of the request they answer; an older request's reply is stale. */
  #answers(id: RequestId | undefined): boolean {
    return id === undefined || id === this.#requestId;
  }

  #toIdle(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#requestId = null;
    if (this.#phase !== 'idle') this.#go('idle');
  }

  #go(next: SubscriptionPhase): void {
    if (!TRANSITIONS[this.#phase].includes(next)) {
      this.#host.log('ignored invalid subscription transition', { channel: this.channel, from: this.#phase, to: next });
      return;
    }
    this.#phase = next;
  }

  #setStatus(status: ChannelStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    this.#host.statusChanged();
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#host.log('a channel listener threw', { channel: this.channel, error: (error as Error).message });
    }
  }
}
