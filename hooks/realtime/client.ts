/**
 * One WebSocket per tab, carrying every subscription of every component (a Phoenix socket
 * carries many channels). Framework-free so that it can be tested without React; the provider
 * (hooks/RealtimeProvider.tsx) owns the tab's instance.
 *
 * - Connection state lives in one snapshot changed only by `#setState` (see state.ts).
 * - Lost connections are retried with full-jitter exponential backoff, at most `maxAttempts`
 *   times in a row; then the client is 'closed' ('gave_up') and components poll over HTTP. A
 *   single probe every `probeIntervalMs` (or `retryNow()`, called when the browser comes back
 *   online) tries again.
 * - Close codes decide, through the protocol's `closeCodeAction`: 1001/1011/1013/4029/4030/1006
 *   reconnect; 4001 fetches a fresh token and tries once more, then stops (no reconnect storm
 *   on an expired session); 1000 stops.
 * - After every (re)connect all channels are subscribed again; `onSubscribed` tells listeners,
 *   so they can refetch what they may have missed while disconnected.
 * - An application-level ping every `pingIntervalMs` detects dead connections that the browser
 *   has not noticed (its WebSocket API exposes no protocol pings).
 */
import {
  closeCodeAction,
  eventDataSchemas,
  isEventType,
  subprotocolsFor,
  type ClientFrame,
  type ErrorFrame,
  type PushFrame,
} from '@/websocket-server/src/protocol/index.ts';
import { DEFAULT_BACKOFF, fullJitterDelay, type BackoffOptions } from './backoff.ts';
import { SignedOutError, socketUrl, type RealtimeEndpoint } from './endpoint.ts';
import { INITIAL_SNAPSHOT, TRANSITIONS, type ClosedReason, type ConnectionSnapshot, type ConnectionState } from './state.ts';

export interface ChannelListener {
  onEvent(frame: PushFrame): void;
  /** Each time the server confirms the subscription: first subscribe and every resubscribe. */
  onSubscribed?(): void;
  /** The server refused the channel (forbidden, not_found, …). It is not retried on its own;
   * the next reconnect asks again, by then the user may have subscribed or bought. */
  onError?(error: ErrorFrame): void;
}

export type ChannelStatus =
  | { status: 'pending' }
  | { status: 'subscribed' }
  | { status: 'error'; code: string; message: string };

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
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Longest wait for the server's `connected` frame after starting an attempt (ms). */
  connectTimeoutMs?: number;
  /** After giving up, one attempt this often (ms); 0 disables the probe. */
  probeIntervalMs?: number;
  onLog?: (message: string, fields?: Record<string, unknown>) => void;
}

const OPEN = 1;
/** Pseudo close code for sockets this client abandoned itself (timeout, missing pong). */
const LOCAL_ABORT = 4000;
/** How many recent push ids are remembered to drop duplicates (snapshot vs live). */
const SEEN_IDS = 256;
/** Grace period before an unused channel is unsubscribed (ms). */
const UNSUBSCRIBE_LINGER_MS = 1_500;

const PENDING: ChannelStatus = { status: 'pending' };

type ChannelEntry = {
  listeners: Set<ChannelListener>;
  status: ChannelStatus;
  linger: ReturnType<typeof setTimeout> | undefined;
};

export class RealtimeClient {
  readonly #options: Required<Omit<RealtimeClientOptions, 'onLog'>> & Pick<RealtimeClientOptions, 'onLog'>;
  readonly #channels = new Map<string, ChannelEntry>();
  readonly #stateListeners = new Set<() => void>();
  readonly #channelListeners = new Set<() => void>();
  readonly #seen: string[] = [];
  #snapshot: ConnectionSnapshot = INITIAL_SNAPSHOT;
  #socket: WebSocketLike | null = null;
  /** Bumped whenever the current attempt is superseded, so stale callbacks do nothing. */
  #generation = 0;
  #running = false;
  /** Whether a 4001 has already been answered with a fresh token since the last open. */
  #reauthenticated = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #nextRequestId = 1;

  constructor(options: RealtimeClientOptions) {
    this.#options = {
      maxAttempts: 10,
      backoff: DEFAULT_BACKOFF,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
      probeIntervalMs: 5 * 60_000,
      ...options,
    };
  }

  // ---- lifecycle ------------------------------------------------------------------------

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#snapshotPatch({ attempt: 0 });
    this.#setState('connecting', { closedReason: null });
    void this.#connect(false);
  }

  /** Closes the socket and stops every timer; `start()` may be called again afterwards. */
  stop(): void {
    this.#running = false;
    this.#teardown();
    for (const entry of this.#channels.values()) entry.status = { status: 'pending' };
    this.#setState('closed', { closedReason: 'stopped' });
  }

  /** Try now, from any state but 'open' (the browser came back online, a user clicked retry). */
  retryNow(): void {
    if (!this.#running || this.#snapshot.state === 'open' || this.#snapshot.state === 'connecting') return;
    this.#teardown();
    this.#snapshotPatch({ attempt: 0 });
    if (this.#snapshot.state === 'closed') this.#setState('connecting', { closedReason: null });
    void this.#connect(false);
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

  #snapshotPatch(patch: Partial<Omit<ConnectionSnapshot, 'state'>>): void {
    this.#setState(this.#snapshot.state, patch);
  }

  // ---- channels -------------------------------------------------------------------------

  /**
   * Adds a listener to `channel`; the first listener subscribes. When the last one leaves, the
   * channel lingers for `UNSUBSCRIBE_LINGER_MS` before it is unsubscribed, so that a component
   * that remounts at once (React StrictMode, a quick navigation back) reuses the live
   * subscription instead of racing an unsubscribe against a new subscribe on the server.
   */
  subscribe(channel: string, listener: ChannelListener): () => void {
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), status: { status: 'pending' }, linger: undefined };
      this.#channels.set(channel, entry);
      if (this.#snapshot.state === 'open') this.#send({ type: 'subscribe', channel, id: this.#nextRequestId++ });
    } else {
      clearTimeout(entry.linger);
      entry.linger = undefined;
      // Joined an already live channel: tell this listener as the server told the others.
      if (entry.status.status === 'subscribed') queueMicrotask(() => listener.onSubscribed?.());
    }
    entry.listeners.add(listener);
    return () => {
      const current = this.#channels.get(channel);
      if (!current?.listeners.delete(listener) || current.listeners.size > 0) return;
      current.linger = setTimeout(() => {
        if (this.#channels.get(channel) !== current || current.listeners.size > 0) return;
        this.#channels.delete(channel);
        if (this.#snapshot.state === 'open' && current.status.status !== 'error') {
          this.#send({ type: 'unsubscribe', channel, id: this.#nextRequestId++ });
        }
        this.#emitChannelStatus();
      }, UNSUBSCRIBE_LINGER_MS);
    };
  }

  #setChannelStatus(channel: string, status: ChannelStatus): void {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    entry.status = status;
    this.#emitChannelStatus();
  }

  #emitChannelStatus(): void {
    for (const listener of this.#channelListeners) listener();
  }

  // ---- connecting -----------------------------------------------------------------------

  async #connect(freshToken: boolean): Promise<void> {
    const generation = ++this.#generation;
    let endpoint: RealtimeEndpoint;
    try {
      endpoint = await this.#options.endpoint({ fresh: freshToken });
    } catch (error) {
      if (generation !== this.#generation) return;
      if (error instanceof SignedOutError) {
        this.#teardown();
        this.#setState('closed', { closedReason: 'signed_out' });
        return;
      }
      this.#log('could not get a realtime endpoint', { error: (error as Error).message });
      this.#scheduleRetry(null);
      return;
    }
    if (generation !== this.#generation || !this.#running) return;

    let socket: WebSocketLike;
    try {
      socket = this.#options.createSocket(socketUrl(endpoint, this.#options.location), subprotocolsFor(endpoint.token));
    } catch (error) {
      this.#log('could not open a socket', { error: (error as Error).message });
      this.#scheduleRetry(null);
      return;
    }
    this.#socket = socket;
    // The server completes the handshake even for a bad token and then closes with 4001, so
    // "open" means the `connected` frame, not the WebSocket open event.
    this.#connectTimer = setTimeout(() => this.#abandon(generation, 'no connected frame in time'), this.#options.connectTimeoutMs);
    socket.onmessage = (event) => {
      if (generation === this.#generation) this.#onMessage(event.data);
    };
    socket.onclose = (event) => {
      if (generation === this.#generation) this.#onClose(event.code);
    };
    // An error is always followed by a close event, which does the work.
    socket.onerror = () => {};
  }

  /** Drops the current socket without waiting for its close event, then retries. */
  #abandon(generation: number, why: string): void {
    if (generation !== this.#generation) return;
    this.#log('abandoning socket', { why });
    this.#onClose(LOCAL_ABORT);
  }

  #onClose(code: number): void {
    this.#teardown();
    if (!this.#running) return;
    const action = code === LOCAL_ABORT ? 'reconnect' : closeCodeAction(code);
    this.#log('socket closed', { code, action });
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
      if (this.#snapshot.state === 'open') this.#setState('reconnecting', { lastCloseCode: code });
      else this.#snapshotPatch({ lastCloseCode: code });
      void this.#connect(true);
      return;
    }
    this.#scheduleRetry(code);
  }

  #scheduleRetry(code: number | null): void {
    const lastCloseCode = code ?? this.#snapshot.lastCloseCode;
    const attempt = this.#snapshot.attempt;
    if (attempt >= this.#options.maxAttempts) {
      this.#setState('closed', { closedReason: 'gave_up', lastCloseCode });
      if (this.#options.probeIntervalMs > 0) {
        this.#retryTimer = setTimeout(() => this.#probe(), this.#options.probeIntervalMs);
      }
      return;
    }
    const delay = fullJitterDelay(attempt, this.#options.backoff);
    this.#setState('reconnecting', { attempt: attempt + 1, lastCloseCode });
    this.#log('reconnecting', { attempt: attempt + 1, delayMs: delay });
    this.#retryTimer = setTimeout(() => void this.#connect(false), delay);
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
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    const socket = this.#socket;
    this.#socket = null;
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

  #send(frame: ClientFrame): void {
    if (this.#socket?.readyState === OPEN) this.#socket.send(JSON.stringify(frame));
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
        this.#onConnected();
        return;
      case 'subscribed': {
        const channel = String(frame.channel);
        this.#setChannelStatus(channel, { status: 'subscribed' });
        for (const listener of this.#channels.get(channel)?.listeners ?? []) listener.onSubscribed?.();
        return;
      }
      case 'unsubscribed':
        return;
      case 'pong':
        clearTimeout(this.#pongTimer);
        return;
      case 'error': {
        const error = frame as unknown as ErrorFrame;
        if (error.channel && this.#channels.has(error.channel)) {
          this.#setChannelStatus(error.channel, { status: 'error', code: error.code, message: error.message });
          for (const listener of this.#channels.get(error.channel)?.listeners ?? []) listener.onError?.(error);
        } else {
          this.#log('server error reply', { code: error.code, message: error.message });
        }
        return;
      }
      default:
        if (isEventType(frame.type)) this.#onPush(frame as unknown as PushFrame);
        else this.#log('dropped a frame of unknown type', { type: String(frame.type).slice(0, 40) });
    }
  }

  #onConnected(): void {
    clearTimeout(this.#connectTimer);
    this.#reauthenticated = false;
    this.#setState('open', { attempt: 0, lastCloseCode: null });
    for (const [channel, entry] of this.#channels) {
      entry.status = { status: 'pending' };
      this.#send({ type: 'subscribe', channel, id: this.#nextRequestId++ });
    }
    this.#emitChannelStatus();
    const generation = this.#generation;
    this.#pingTimer = setInterval(() => {
      this.#send({ type: 'ping', id: this.#nextRequestId++ });
      clearTimeout(this.#pongTimer);
      this.#pongTimer = setTimeout(() => this.#abandon(generation, 'no pong in time'), this.#options.pongTimeoutMs);
    }, this.#options.pingIntervalMs);
  }

  #onPush(frame: PushFrame): void {
    const entry = this.#channels.get(frame.channel);
    if (!entry) return;
    // The same event can arrive twice: in the snapshot pushed on subscribe and live.
    const key = `${frame.channel}:${frame.id}`;
    if (this.#seen.includes(key)) return;
    this.#seen.push(key);
    if (this.#seen.length > SEEN_IDS) this.#seen.shift();
    if (!eventDataSchemas[frame.type].safeParse(frame.data).success) {
      this.#log('dropped a push that does not match the protocol', { type: frame.type });
      return;
    }
    for (const listener of [...entry.listeners]) {
      try {
        listener.onEvent(frame);
      } catch (error) {
        this.#log('a channel listener threw', { channel: frame.channel, error: (error as Error).message });
      }
    }
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#options.onLog?.(message, fields);
  }
}

export type { ClosedReason, ConnectionSnapshot, ConnectionState };
