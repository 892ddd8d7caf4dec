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
 * meanwhile; the next connection finds out). A gap in the offsets (after an `unsubscribe`) and
 * the server's `unsubscribed` with reason `resubscribe` go through idle to subscribing at once,
 * on the same socket, with `since`; the status stays 'subscribed' meanwhile.
 *
 * The status components see (`ChannelStatus`) is the server's last word: 'pending' until it
 * answers on the current socket, 'subscribed', or 'error' with the code (`forbidden` for a
 * revoked channel too).
 *
 * Position (see websocket-server/src/protocol/history.ts): the channel's `{offset, epoch}` as of
 * the last push applied, taken from the `subscribed` reply and advanced by each push. Every
 * later subscribe (a reconnect, a server-side `resubscribe`, a gap) carries `since` it, so the
 * server replays what was missed, in order, or says `recovered: false`. Pushes are applied in
 * offset order, exactly once:
 *
 *   - offset ≤ the applied one in the same epoch: a copy (replay and live overlap): dropped;
 *   - the next offset: applied;
 *   - a later one (a gap): dropped, and the channel is subscribed again with `since`, so the
 *     missing events and this one come back in order (or `recovered: false`);
 *   - another epoch (the server lost the history; offsets restart): adopted at offset 1, a
 *     later offset is a gap from the start of that epoch;
 *   - no offset (published without history): applied, the position is left alone.
 *
 * A snapshot (`unread_notifications`, `notifications_recovered`) carries the position it
 * reflects: it is dropped when that is older than the applied position, and never moves it. An
 * event id already seen on the channel is dropped too (a publisher that sent the same event
 * twice).
 */
import type {
  ErrorFrame,
  EventType,
  PushFrame,
  RequestId,
  StreamPosition,
  SubscribedFrame,
  UnsubscribeReason,
} from '@/websocket-server/src/protocol/index.ts';
import { DEFAULT_BACKOFF, retryDelay, type BackoffOptions } from './backoff.ts';

/** What a listener learns each time the server confirms the channel (centrifuge-js style). */
export interface SubscribedInfo {
  /** Not the first confirmation this listener received (a reconnect, a resubscribe). */
  resubscribed: boolean;
  /** The subscribe continued from a position (`since`): the listener's, or the last applied one. */
  wasRecovering: boolean;
  /**
   * true: every event after that position follows (replayed, then live), the listener's state
   * stays valid. false: events were lost (the history no longer covers the position, or there was
   * no position to continue from on a resubscribe): reload the state. undefined: a first
   * subscribe without a position, nothing to recover.
   */
  recovered: boolean | undefined;
}

export interface ChannelListener {
  onEvent(frame: PushFrame): void;
  /**
   * Where this listener's state was read (a page rendered from the database): the first
   * subscribe continues from there, so what was published in between is replayed. Read once,
   * when the listener is added.
   */
  readonly since?: StreamPosition | null | undefined;
  /** notifications_: the newest notification the listener has; sent with `since` so that a failed
   * recovery is answered with `notifications_recovered` from the database. */
  lastNotificationId?(): string | undefined;
  /** Each time the server confirms the subscription: first subscribe and every resubscribe. */
  onSubscribed?(info: SubscribedInfo): void;
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

/** What a subscribe asks for beyond the channel. */
export interface SubscribeRequest {
  since?: StreamPosition;
  lastNotificationId?: string;
}

export interface SubscriptionHost {
  /** Sends `subscribe`; its request id, or null when the socket is not open. */
  sendSubscribe(channel: string, request: SubscribeRequest): RequestId | null;
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

/** State pushed by the server itself, at the position it reflects (not an event of the stream). */
const SNAPSHOT_TYPES: ReadonlySet<EventType> = new Set<EventType>(['unread_notifications', 'notifications_recovered']);
/** How many recent event ids a channel remembers to drop copies. */
const SEEN_IDS = 256;

/** The push's position, when it was published with history. */
export function positionOf(frame: { offset?: unknown; epoch?: unknown }): StreamPosition | null {
  return typeof frame.offset === 'number' && typeof frame.epoch === 'string' ? { offset: frame.offset, epoch: frame.epoch } : null;
}

/** `a` is before `b` in the same epoch (positions of different epochs are not ordered). */
export function isBefore(a: StreamPosition, b: StreamPosition): boolean {
  return a.epoch === b.epoch && a.offset < b.offset;
}

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
  /** What the subscribe in flight continues from (`since`), if anything. */
  #requestSince: StreamPosition | null = null;
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last applied push's position (or the `subscribed` reply's): what `since` carries. */
  #position: StreamPosition | null = null;
  /** The server confirmed the channel at least once (so a later confirmation is a resubscribe). */
  #everSubscribed = false;
  /** Listeners confirmed at least once. */
  readonly #confirmed = new WeakSet<ChannelListener>();
  /** Listeners that joined with a `since` older than the position the channel continues from:
   * they missed what was applied before they came, and are told `recovered: false`. */
  readonly #behind = new WeakSet<ChannelListener>();
  /** The position a gap resubscribe continued from: a second gap there means the server cannot
   * fill it, and the channel starts over (listeners reload). */
  #gapAt: StreamPosition | null = null;
  /** The next subscribe goes without `since` and its confirmation says `recovered: false`. */
  #startOver = false;
  readonly #seen: string[] = [];

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

  /** The position the channel continues from (a copy), null before the server gave one. */
  get position(): StreamPosition | null {
    return this.#position && { ...this.#position };
  }

  /** Whether the server holds, or is about to hold, this channel for the socket. */
  get held(): boolean {
    return this.#phase === 'subscribing' || this.#phase === 'subscribed';
  }

  addListener(listener: ChannelListener): void {
    this.listeners.add(listener);
    const since = listener.since ?? null;
    if (since) {
      // Before anything was asked, the listener's position is the channel's. Later, the channel
      // continues from its own position: a listener whose state is older missed something.
      const unasked = this.#position === null && !this.#everSubscribed && !this.held;
      if (unasked) this.#position = { offset: since.offset, epoch: since.epoch };
      else if (this.#position === null || isBefore(since, this.#position) || since.epoch !== this.#position.epoch) this.#behind.add(listener);
    }
    // Joined an already live channel: tell this listener as the server told the others.
    if (this.#phase === 'subscribed') {
      const info: SubscribedInfo = this.#behind.has(listener)
        ? { resubscribed: false, wasRecovering: true, recovered: false }
        : { resubscribed: false, wasRecovering: since !== null, recovered: since !== null ? true : undefined };
      queueMicrotask(() => {
        if (!this.listeners.has(listener) || this.#phase !== 'subscribed') return;
        this.#behind.delete(listener);
        this.#confirmed.add(listener);
        this.#call(() => listener.onSubscribed?.(info));
      });
    }
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

  onSubscribed(frame: Pick<SubscribedFrame, 'id'> & Partial<Pick<SubscribedFrame, 'offset' | 'epoch' | 'recovered'>>): void {
    if (this.#phase !== 'subscribing' || !this.#answers(frame.id)) return;
    const since = this.#requestSince;
    const replied = positionOf(frame);
    let wasRecovering = since !== null;
    let recovered: boolean | undefined;
    if (since) {
      recovered = frame.recovered === true;
      // Recovered: the replay that follows moves the position on from `since`, event by event.
      // Not recovered: the state must be reloaded, and the stream continues from here.
      if (!recovered) this.#position = replied;
    } else {
      this.#position = replied;
      if (this.#startOver) {
        wasRecovering = true;
        recovered = false;
      } else if (this.#everSubscribed) {
        // A resubscribe without a position (the server gave none): what was missed is unknown.
        recovered = false;
      }
    }
    this.#startOver = false;
    this.#everSubscribed = true;
    this.#go('subscribed');
    this.#retries = 0;
    this.#setStatus(SUBSCRIBED);
    if (since) this.#host.log('subscribed with since', { channel: this.channel, since, recovered, position: replied });
    for (const listener of [...this.listeners]) {
      const behind = this.#behind.has(listener);
      const info: SubscribedInfo = {
        resubscribed: this.#confirmed.has(listener),
        wasRecovering: wasRecovering || behind,
        recovered: behind ? false : recovered,
      };
      this.#behind.delete(listener);
      this.#confirmed.add(listener);
      this.#call(() => listener.onSubscribed?.(info));
    }
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

  /**
   * The server's `unsubscribed` with reason `resubscribe`: its node lost continuity on the
   * channel and already dropped it. Asked again at once, with `since`; the status stays as it is.
   */
  onResubscribe(): void {
    if (!this.held) return;
    this.#host.log('the server asked for a resubscribe', { channel: this.channel, since: this.#position });
    this.#toIdle();
    this.#ask();
  }

  /**
   * A push of this channel; dropped unless the server confirmed the subscription, and applied in
   * offset order, once (see the file's comment). `valid`: its data matches the protocol; an
   * invalid push still takes its place in the order, but reaches no listener.
   */
  deliver(frame: PushFrame, valid = true): void {
    if (this.#phase !== 'subscribed') return;
    if (!this.#inOrder(frame)) return;
    if (this.#seenBefore(frame.id)) return;
    if (!valid) {
      this.#host.log('dropped a push that does not match the protocol', { channel: this.channel, type: frame.type });
      return;
    }
    for (const listener of [...this.listeners]) this.#call(() => listener.onEvent(frame));
  }

  /** Whether `frame` comes next; moves the position on when it does. */
  #inOrder(frame: PushFrame): boolean {
    const at = positionOf(frame);
    if (!at) return true;
    const applied = this.#position;
    if (SNAPSHOT_TYPES.has(frame.type)) {
      if (applied && isBefore(at, applied)) {
        this.#host.log('ignored a snapshot older than the applied position', { channel: this.channel, snapshot: at, applied });
        return false;
      }
      return true;
    }
    if (applied === null || (applied.epoch !== at.epoch && at.offset === 1)) {
      if (applied) this.#host.log('a new epoch: the history was reset; offsets restart', { channel: this.channel, from: applied, to: at });
      this.#advance(at);
      return true;
    }
    if (applied.epoch !== at.epoch) {
      this.#fillGap({ offset: 0, epoch: at.epoch }, at);
      return false;
    }
    if (at.offset <= applied.offset) return false;
    if (at.offset === applied.offset + 1) {
      this.#advance(at);
      return true;
    }
    this.#fillGap(applied, at);
    return false;
  }

  #advance(to: StreamPosition): void {
    this.#position = { offset: to.offset, epoch: to.epoch };
    this.#gapAt = null;
  }

  /**
   * Events between `from` and `got` never arrived: unsubscribe and subscribe again with `since`
   * `from` (the server answers in order, so nothing of the channel is applied in between). A gap
   * again at the same place means the server cannot fill it: start over without `since`.
   */
  #fillGap(from: StreamPosition, got: StreamPosition): void {
    const again = this.#gapAt !== null && this.#gapAt.epoch === from.epoch && this.#gapAt.offset === from.offset;
    this.#host.log(again ? 'a gap the server did not fill; starting over' : 'a gap in the channel’s offsets; resubscribing with since', {
      channel: this.channel,
      applied: from,
      got,
    });
    this.#gapAt = again ? null : { ...from };
    this.#position = again ? null : { ...from };
    this.#startOver = again;
    this.#host.sendUnsubscribe(this.channel);
    this.#toIdle();
    this.#ask();
  }

  #seenBefore(id: string): boolean {
    if (this.#seen.includes(id)) return true;
    this.#seen.push(id);
    if (this.#seen.length > SEEN_IDS) this.#seen.shift();
    return false;
  }

  #ask(): void {
    const since = this.#startOver ? null : this.#position;
    const request: SubscribeRequest = {};
    if (since) {
      request.since = { offset: since.offset, epoch: since.epoch };
      for (const listener of this.listeners) {
        const id = listener.lastNotificationId?.();
        if (id) {
          request.lastNotificationId = id;
          break;
        }
      }
    }
    const id = this.#host.sendSubscribe(this.channel, request);
    if (id === null) return;
    this.#requestId = id;
    this.#requestSince = request.since ?? null;
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
    this.#requestSince = null;
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
