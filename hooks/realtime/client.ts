/**
 * One WebSocket per tab, carrying every subscription of every component (a Phoenix socket
 * carries many channels). Framework-free so that it can be tested without React; the provider
 * (hooks/RealtimeProvider.tsx) owns the tab's instance.
 *
 * - Connection state lives in one snapshot changed only by `#setState` (see state.ts); each
 *   channel has its own small state machine (subscription.ts); the session's refresh ahead of
 *   expiry is session-refresh.ts.
 * - Lost connections are retried with full-jitter exponential backoff, at least as long as the
 *   server's `retry_after_ms=` hint in the close reason. The backoff level only goes back to 0
 *   once a socket has stayed open for `stableAfterMs`: a server that accepts and closes at once
 *   (4029, 4030, 1013) sees growing delays, not a loop at the base delay. After `maxAttempts`
 *   such retries in a row the client is 'closed' ('gave_up') and components poll over HTTP; a
 *   single probe every `probeIntervalMs` (or `retryNow()`) tries again.
 * - Close codes decide, through the protocol's `closeCodeAction`: 1001/1011/1013/4029/4030/1006
 *   reconnect; 4001 fetches a fresh token and tries once more, then stops (no reconnect storm
 *   on an expired session); 4002 (session expired, no refresh in time, as with cookie
 *   authentication) reconnects at once with a fresh endpoint, not counted as a failure; 4003
 *   (signed out, account deleted) and 1000 stop.
 * - After every (re)connect all channels are subscribed again, each with `since` its last applied
 *   position, so the server replays what was missed in order; `onSubscribed({recovered})` tells
 *   listeners whether their state is still whole or must be reloaded (`recovered: false`). Each
 *   channel applies pushes in offset order, once (subscription.ts); the server's `unsubscribed`
 *   with reason `resubscribe` is answered with a subscribe with `since` at once.
 * - An application-level ping every `pingIntervalMs` detects dead connections that the browser
 *   has not noticed (its WebSocket API exposes no protocol pings).
 */
import {
  BROADCAST_CHANNEL,
  CLOSE_CODES,
  closeCodeAction,
  eventDataSchemas,
  isEventType,
  retryAfterFromReason,
  subprotocolsFor,
  type BroadcastPayload,
  type ClientFrame,
  type ConnectedFrame,
  type ErrorFrame,
  type PushFrame,
  type RefreshedFrame,
  type RequestId,
  type StreamPosition,
  type SubscribedFrame,
  type UnsubscribedFrame,
} from '@/websocket-server/src/protocol/index.ts';
import { DEFAULT_BACKOFF, retryDelay, type BackoffOptions } from './backoff.ts';
import { SignedOutError, socketUrl, type RealtimeEndpoint } from './endpoint.ts';
import { DEFAULT_REFRESH, SessionRefresh, type RefreshPolicy } from './session-refresh.ts';
import { INITIAL_SNAPSHOT, TRANSITIONS, type ClosedReason, type ConnectionSnapshot, type ConnectionState } from './state.ts';
import { PENDING, Subscription, type ChannelListener, type ChannelStatus, type SubscribedInfo, type SubscriptionHost } from './subscription.ts';

/** The surface of the browser's WebSocket this client uses (tests pass `ws` sockets). */
export type WebSocketLike = Pick<WebSocket, 'readyState' | 'send' | 'close' | 'onmessage' | 'onclose' | 'onerror'>;
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface RealtimeClientOptions {
  endpoint: (opts: { fresh: boolean }) => Promise<RealtimeEndpoint>;
  createSocket: WebSocketFactory;
  /** Page location, to resolve a path endpoint (`/ws`) against. */
  location: { protocol: string; host: string };
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** How long a socket must stay open before the backoff level goes back to 0 (ms). */
  stableAfterMs?: number;
  /** After 4002 on a stable socket, the reconnect waits a random delay below this (ms). */
  expiredReconnectJitterMs?: number;
  /** Retries of a subscribe answered `internal_error` or `rate_limited`, with `backoff`. */
  channelRetries?: number;
  /** When to refresh the session ahead of its expiry (see session-refresh.ts). */
  refresh?: RefreshPolicy;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Longest wait for the server's `connected` frame after starting an attempt (ms). */
  connectTimeoutMs?: number;
  /** After giving up, one attempt this often (ms); 0 disables the probe. */
  probeIntervalMs?: number;
  /** Source of the jitter, uniform in [0, 1) (tests may pin it). */
  random?: () => number;
  onLog?: (message: string, fields?: Record<string, unknown>) => void;
}

const OPEN = 1;
/** Pseudo close code for sockets this client abandoned itself (timeout, missing pong). */
const LOCAL_ABORT = 4000;
/** Grace period before an unused channel is unsubscribed (ms). */
const UNSUBSCRIBE_LINGER_MS = 1_500;

/** `meta.id`: the event's id, the same for the live frame and the copy sent at a later connect. */
export type BroadcastListener = (broadcast: BroadcastPayload, meta: { id: string; ts: number }) => void;

export class RealtimeClient {
  readonly #options: Required<Omit<RealtimeClientOptions, 'onLog'>> & Pick<RealtimeClientOptions, 'onLog'>;
  readonly #channels = new Map<string, Subscription>();
  readonly #stateListeners = new Set<() => void>();
  readonly #channelListeners = new Set<() => void>();
  /** Operator broadcasts: pushed on `broadcast` to every socket, never subscribed (onBroadcast). */
  readonly #broadcastListeners = new Set<BroadcastListener>();
  /** The latest broadcast this client received, handed to listeners added after it. */
  #lastBroadcast: { broadcast: BroadcastPayload; meta: { id: string; ts: number } } | null = null;
  readonly #subscriptionHost: SubscriptionHost;
  readonly #refresh: SessionRefresh;
  #snapshot: ConnectionSnapshot = INITIAL_SNAPSHOT;
  #socket: WebSocketLike | null = null;
  /** What the current socket was opened with. */
  #endpoint: RealtimeEndpoint | null = null;
  /** Bumped whenever the current attempt is superseded, so stale callbacks do nothing. */
  #generation = 0;
  #running = false;
  /** Whether a 4001 has already been answered with a fresh token since the last open. */
  #reauthenticated = false;
  /** The backoff level: failed attempts since a socket last stayed open for `stableAfterMs`. */
  #failures = 0;
  /** The current socket has stayed open for `stableAfterMs`. */
  #stable = false;
  /** A retry timer is pending (backoff or jitter); `retryNow` may cut it short. */
  #waiting: { fresh: boolean } | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #nextRequestId = 1;

  constructor(options: RealtimeClientOptions) {
    this.#options = {
      maxAttempts: 10,
      backoff: DEFAULT_BACKOFF,
      stableAfterMs: 10_000,
      expiredReconnectJitterMs: 500,
      channelRetries: 5,
      refresh: DEFAULT_REFRESH,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      probeIntervalMs: 5 * 60_000,
      random: Math.random,
      ...options,
    };
    this.#subscriptionHost = {
      sendSubscribe: (channel, request) => this.#request((id) => ({ type: 'subscribe', channel, id, ...request })),
      sendUnsubscribe: (channel) => void this.#request((id) => ({ type: 'unsubscribe', channel, id })),
      statusChanged: () => this.#emitChannelStatus(),
      log: (message, fields) => this.#log(message, fields),
    };
    this.#refresh = new SessionRefresh(
      {
        freshToken: async () => (await this.#options.endpoint({ fresh: true })).token,
        sendRefresh: (token) => this.#request((id) => ({ type: 'refresh', token, id })),
        signedOut: () => {
          if (!this.#running) return;
          this.#teardown();
          this.#setState('closed', { closedReason: 'signed_out' });
        },
        log: (message, fields) => this.#log(message, fields),
      },
      this.#options.refresh,
      this.#options.random,
    );
  }

  // ---- lifecycle ------------------------------------------------------------------------

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#failures = 0;
    this.#setState('connecting', { attempt: 0, closedReason: null });
    void this.#connect(false);
  }

  /** Closes the socket and stops every timer; `start()` may be called again afterwards. */
  stop(): void {
    this.#running = false;
    this.#teardown();
    for (const subscription of this.#channels.values()) subscription.reset();
    this.#setState('closed', { closedReason: 'stopped' });
  }

  /**
   * Try now instead of later (the browser came back online, the tab became visible, a user
   * clicked retry). It only cuts short what is waiting: a pending backoff delay, or the wait
   * for the next probe after giving up. An attempt in flight (token fetch, or a socket not yet
   * `connected`) is left alone, and so are deliberate stops (signed out, session revoked, 1000).
   */
  retryNow(): void {
    if (!this.#running) return;
    const { state, closedReason } = this.#snapshot;
    if (state === 'closed' && closedReason === 'gave_up') {
      this.#teardown();
      this.#failures = 0;
      this.#setState('connecting', { attempt: 0 });
      void this.#connect(false);
      return;
    }
    const waiting = this.#waiting;
    if (!waiting) return;
    clearTimeout(this.#retryTimer);
    this.#waiting = null;
    this.#log('retrying now instead of after the delay');
    void this.#connect(waiting.fresh);
  }

  // ---- state, for useSyncExternalStore ---------------------------------------------------

  getSnapshot = (): ConnectionSnapshot => this.#snapshot;

  subscribeState = (listener: () => void): (() => void) => {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  };

  channelStatus(channel: string): ChannelStatus {
    // A constant for unknown channels: useSyncExternalStore needs stable snapshots.
    return this.#channels.get(channel)?.status ?? PENDING;
  }

  /** Where `channel` continues from (its last applied position), null when unknown. */
  channelPosition(channel: string): StreamPosition | null {
    return this.#channels.get(channel)?.position ?? null;
  }

  /** Sends a frame that needs no reply handling here (`typing`); false when the socket is not open. */
  send(frame: ClientFrame): boolean {
    return this.#send(frame);
  }

  /**
   * Listens to operator broadcasts (`broadcast` events on the reserved `broadcast` channel). The
   * server sends them to every authenticated socket without a subscribe, so this holds no
   * channel state; a notice the server keeps for late joiners arrives again after a reconnect
   * with the same `meta.id`, so listeners recognise a notice they already showed. A listener
   * added after a broadcast arrived gets the latest one at once: the frame can come before a
   * component has mounted (at connect, or from the leading tab right after attaching). Returns
   * the remover.
   */
  onBroadcast = (listener: BroadcastListener): (() => void) => {
    this.#broadcastListeners.add(listener);
    const last = this.#lastBroadcast;
    if (last) this.#callBroadcastListener(listener, last.broadcast, last.meta);
    return () => this.#broadcastListeners.delete(listener);
  };

  subscribeChannelStatus = (listener: () => void): (() => void) => {
    this.#channelListeners.add(listener);
    return () => this.#channelListeners.delete(listener);
  };

  /** The one place the connection state changes. */
  #setState(next: ConnectionState, patch: Partial<Omit<ConnectionSnapshot, 'state'>> = {}): void {
    const current = this.#snapshot.state;
    if (next !== current && !TRANSITIONS[current].includes(next)) {
      this.#log('ignored invalid state transition', { from: current, to: next });
      return;
    }
    this.#snapshot = { ...this.#snapshot, ...patch, state: next };
    if (next !== 'closed') this.#snapshot = { ...this.#snapshot, closedReason: null };
    for (const listener of this.#stateListeners) listener();
  }

  // ---- channels -------------------------------------------------------------------------

  /**
   * Adds a listener to `channel`; the first listener subscribes. When the last one leaves, the
   * channel lingers for `UNSUBSCRIBE_LINGER_MS` before it is unsubscribed, so that a component
   * that remounts at once (React StrictMode, a quick navigation back) reuses the live
   * subscription instead of racing an unsubscribe against a new subscribe on the server.
   * `listener.since` (the position the component's state was read at) is where the first
   * subscribe continues from.
   */
  subscribe(channel: string, listener: ChannelListener): () => void {
    let subscription = this.#channels.get(channel);
    if (!subscription) {
      subscription = new Subscription(channel, this.#subscriptionHost, {
        backoff: this.#options.backoff,
        maxRetries: this.#options.channelRetries,
        random: this.#options.random,
      });
      this.#channels.set(channel, subscription);
      // The listener first: its `since` is what the first subscribe asks for.
      subscription.addListener(listener);
      if (this.#snapshot.state === 'open') subscription.open();
    } else {
      clearTimeout(subscription.linger);
      subscription.linger = undefined;
      subscription.addListener(listener);
    }
    const current = subscription;
    return () => {
      if (!current.listeners.delete(listener) || current.listeners.size > 0) return;
      current.linger = setTimeout(() => {
        if (this.#channels.get(channel) !== current || current.listeners.size > 0) return;
        this.#channels.delete(channel);
        current.dispose();
        this.#emitChannelStatus();
      }, UNSUBSCRIBE_LINGER_MS);
    };
  }

  #emitChannelStatus(): void {
    for (const listener of this.#channelListeners) listener();
  }

  // ---- connecting -----------------------------------------------------------------------

  async #connect(freshToken: boolean): Promise<void> {
    const generation = ++this.#generation;
    this.#waiting = null;
    let endpoint: RealtimeEndpoint;
    try {
      endpoint = await this.#options.endpoint({ fresh: freshToken });
    } catch (error) {
      if (generation !== this.#generation || !this.#running) return;
      if (error instanceof SignedOutError) {
        this.#teardown();
        this.#setState('closed', { closedReason: 'signed_out' });
        return;
      }
      this.#log('could not get a realtime endpoint', { error: (error as Error).message });
      this.#scheduleRetry(null, null, freshToken);
      return;
    }
    if (generation !== this.#generation || !this.#running) return;

    let socket: WebSocketLike;
    try {
      socket = this.#options.createSocket(socketUrl(endpoint, this.#options.location), subprotocolsFor(endpoint.token));
    } catch (error) {
      this.#log('could not open a socket', { error: (error as Error).message });
      this.#scheduleRetry(null, null, freshToken);
      return;
    }
    this.#socket = socket;
    this.#endpoint = endpoint;
    // The server completes the handshake even for a bad token and then closes with 4001, so
    // "open" means the `connected` frame, not the WebSocket open event.
    this.#connectTimer = setTimeout(() => this.#abandon(generation, 'no connected frame in time'), this.#options.connectTimeoutMs);
    socket.onmessage = (event) => {
      if (generation === this.#generation) this.#onMessage(event.data);
    };
    socket.onclose = (event) => {
      if (generation === this.#generation) this.#onClose(event.code, event.reason);
    };
    // An error is always followed by a close event, which does the work.
    socket.onerror = () => {};
  }

  /** Drops the current socket without waiting for its close event, then retries. */
  #abandon(generation: number, why: string): void {
    if (generation !== this.#generation) return;
    this.#log('abandoning socket', { why });
    this.#onClose(LOCAL_ABORT, '');
  }

  #onClose(code: number, reason: string | undefined): void {
    const wasStable = this.#stable;
    const wasOpen = this.#snapshot.state === 'open';
    this.#teardown();
    if (!this.#running) return;
    const hintMs = retryAfterFromReason(reason ?? '');
    this.#log('socket closed', { code, reason, stable: wasStable });

    if (code === CLOSE_CODES.sessionRevoked) {
      this.#setState('closed', { closedReason: 'session_revoked', lastCloseCode: code });
      return;
    }
    if (code === CLOSE_CODES.sessionExpired) {
      // The session outlived its token (no refresh in place was possible, or it came too late):
      // a normal event on a socket that has been open a while, reconnected at once with a fresh
      // endpoint. On a socket that closes this way right after opening it is a failure like any
      // other, so a stale token cannot turn it into a loop.
      if (wasStable) {
        this.#setState('reconnecting', { attempt: this.#failures, lastCloseCode: code });
        this.#wait(Math.floor(this.#options.random() * this.#options.expiredReconnectJitterMs), true);
      } else {
        this.#scheduleRetry(code, hintMs, true);
      }
      return;
    }
    const action = code === LOCAL_ABORT ? 'reconnect' : closeCodeAction(code);
    if (action === 'stop') {
      this.#setState('closed', { closedReason: 'server_closed', lastCloseCode: code });
      return;
    }
    if (action === 'reauthenticate') {
      if (this.#reauthenticated) {
        this.#setState('closed', { closedReason: 'unauthorized', lastCloseCode: code });
        return;
      }
      // Once: the token may simply have expired. A second 4001 in a row means the session
      // itself is not accepted, and retrying would only hammer the server.
      this.#reauthenticated = true;
      if (wasOpen) this.#setState('reconnecting', { lastCloseCode: code });
      else this.#setState(this.#snapshot.state, { lastCloseCode: code });
      void this.#connect(true);
      return;
    }
    this.#scheduleRetry(code, hintMs, false);
  }

  /** One more failure: wait (full jitter on the backoff level, at least the server's hint), or give up. */
  #scheduleRetry(code: number | null, hintMs: number | null, fresh: boolean): void {
    const lastCloseCode = code ?? this.#snapshot.lastCloseCode;
    if (this.#failures >= this.#options.maxAttempts) {
      this.#setState('closed', { closedReason: 'gave_up', attempt: this.#failures, lastCloseCode });
      if (this.#options.probeIntervalMs > 0) {
        this.#retryTimer = setTimeout(() => this.#probe(), this.#options.probeIntervalMs);
      }
      return;
    }
    const delay = retryDelay(this.#failures, hintMs, this.#options.backoff, this.#options.random);
    this.#failures++;
    this.#setState('reconnecting', { attempt: this.#failures, lastCloseCode });
    this.#log('reconnecting', { attempt: this.#failures, delayMs: delay });
    this.#wait(delay, fresh);
  }

  #wait(delay: number, fresh: boolean): void {
    this.#waiting = { fresh };
    this.#retryTimer = setTimeout(() => void this.#connect(fresh), delay);
  }

  /** After giving up: one attempt; failing it gives up again until the next probe. */
  #probe(): void {
    if (!this.#running || this.#snapshot.state !== 'closed') return;
    this.#setState('connecting', { attempt: this.#options.maxAttempts });
    void this.#connect(false);
  }

  /** Stops the current socket and every timer; state is left to the caller. */
  #teardown(): void {
    this.#generation++;
    this.#waiting = null;
    this.#stable = false;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#stableTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#refresh.stop();
    for (const subscription of this.#channels.values()) subscription.close();
    const socket = this.#socket;
    this.#socket = null;
    this.#endpoint = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = () => {};
      try {
        socket.close(1000, 'client closing');
      } catch {
        // Already closed or never opened.
      }
    }
  }

  // ---- frames ---------------------------------------------------------------------------

  #send(frame: ClientFrame): boolean {
    if (this.#socket?.readyState !== OPEN) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a request with the next id; the id, or null when the socket is not open. */
  #request(frame: (id: number) => ClientFrame): RequestId | null {
    const id = this.#nextRequestId++;
    return this.#send(frame(id)) ? id : null;
  }

  #onMessage(raw: unknown): void {
    let frame: { type?: unknown; [key: string]: unknown };
    try {
      frame = JSON.parse(String(raw)) as typeof frame;
    } catch {
      this.#log('dropped a frame that is not JSON');
      return;
    }
    switch (frame.type) {
      case 'connected':
        this.#onConnected(frame as unknown as Partial<ConnectedFrame>);
        return;
      case 'refreshed':
        if (!this.#refresh.onRefreshed(frame as unknown as RefreshedFrame)) this.#log('dropped a refreshed frame of no refresh');
        return;
      case 'subscribed':
        this.#channels.get(String(frame.channel))?.onSubscribed(frame as unknown as SubscribedFrame);
        return;
      case 'unsubscribed': {
        const unsubscribed = frame as unknown as UnsubscribedFrame;
        // With an id it answers our own unsubscribe (the channel is already gone here); with a
        // reason and no id the server ended the subscription itself.
        // Reason `resubscribe`: the server's node lost continuity; subscribe again with `since`.
        if (unsubscribed.id === undefined && unsubscribed.reason === 'resubscribe') {
          this.#channels.get(unsubscribed.channel)?.onResubscribe();
        } else if (unsubscribed.id === undefined && unsubscribed.reason !== undefined) {
          this.#log('the server ended a subscription', { channel: unsubscribed.channel, reason: unsubscribed.reason });
          this.#channels.get(unsubscribed.channel)?.onRevoked(unsubscribed.reason, unsubscribed.message ?? unsubscribed.reason);
        }
        return;
      }
      case 'pong':
        clearTimeout(this.#pongTimer);
        return;
      case 'error': {
        const error = frame as unknown as ErrorFrame;
        const subscription = error.channel === undefined ? undefined : this.#channels.get(error.channel);
        if (subscription) subscription.onError(error);
        else if (!this.#refresh.onError(error)) this.#log('server error reply', { code: error.code, message: error.message });
        return;
      }
      default:
        if (isEventType(frame.type)) this.#onPush(frame as unknown as PushFrame);
        else this.#log('dropped a frame of unknown type', { type: String(frame.type).slice(0, 40) });
    }
  }

  #onConnected(frame: Partial<ConnectedFrame>): void {
    clearTimeout(this.#connectTimer);
    this.#reauthenticated = false;
    this.#setState('open', { attempt: 0, lastCloseCode: null });
    const generation = this.#generation;
    // The backoff level is kept until the socket proves stable: closing right after opening is
    // a failure as far as the next delay is concerned.
    this.#stableTimer = setTimeout(() => {
      if (generation !== this.#generation) return;
      this.#stable = true;
      this.#failures = 0;
    }, this.#options.stableAfterMs);
    for (const subscription of this.#channels.values()) subscription.open();
    this.#refresh.start(this.#endpoint?.token ?? null, frame.expiresAt);
    this.#pingTimer = setInterval(() => {
      this.#send({ type: 'ping', id: this.#nextRequestId++ });
      clearTimeout(this.#pongTimer);
      this.#pongTimer = setTimeout(() => this.#abandon(generation, 'no pong in time'), this.#options.pongTimeoutMs);
    }, this.#options.pingIntervalMs);
  }

  #onPush(frame: PushFrame): void {
    if (frame.channel === BROADCAST_CHANNEL) {
      this.#onBroadcastFrame(frame);
      return;
    }
    const subscription = this.#channels.get(frame.channel);
    if (!subscription) return;
    // Order, copies (replay and live overlap, a snapshot seen twice) and gaps: the channel's.
    subscription.deliver(frame, eventDataSchemas[frame.type].safeParse(frame.data).success);
  }

  #onBroadcastFrame(frame: PushFrame): void {
    const parsed = frame.type === 'broadcast' ? eventDataSchemas.broadcast.safeParse(frame.data) : null;
    if (!parsed?.success) {
      this.#log('dropped a malformed broadcast', { type: String(frame.type).slice(0, 40) });
      return;
    }
    const meta = { id: String(frame.id), ts: Number(frame.ts) };
    this.#lastBroadcast = { broadcast: parsed.data, meta };
    for (const listener of [...this.#broadcastListeners]) this.#callBroadcastListener(listener, parsed.data, meta);
  }

  #callBroadcastListener(listener: BroadcastListener, broadcast: BroadcastPayload, meta: { id: string; ts: number }): void {
    try {
      listener(broadcast, meta);
    } catch (error) {
      this.#log('a broadcast listener threw', { error: (error as Error).message });
    }
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#options.onLog?.(message, fields);
  }
}

export type { ChannelListener, ChannelStatus, ClosedReason, ConnectionSnapshot, ConnectionState, SubscribedInfo };
