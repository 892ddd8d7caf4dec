/**
 * The drills' reference client, on a plain `ws` socket: what a careful browser client does,
 * with everything it saw written down so a drill can count.
 *
 * - Keeps each channel's position (the offset and epoch of the last event it applied) and, after
 *   any reconnect or a `resubscribe` notice from the node, subscribes again with `since` (and,
 *   on notifications_, `lastNotificationId`: the newest notification it holds).
 * - `recovered: true`: the replay follows; `recovered: false`: it "reloads" the channel (a real
 *   client re-reads its state over HTTP) and takes the reply's position. Every reload is kept,
 *   with when it happened and at which position, for the lost-event count (ledger.ts).
 * - Drops a push whose id it has already applied (a replay overlapping live delivery, a retried
 *   publish), and counts what it dropped.
 * - Records as a violation any push that does not follow its position: a gap in the offsets, or
 *   an epoch other than the one it holds, without a `subscribed` in between. The protocol says
 *   that cannot happen (messages.ts, SubscribedFrame).
 * - Reconnects with full-jitter exponential backoff (at least a `retry_after_ms=` hint) to the
 *   next of its URLs, and records per reconnect the time from `connected` to the last recovered
 *   event (the recovery latency the drills print).
 */
import WebSocket from 'ws';
import { isEventType, retryAfterFromReason } from '../../../websocket-server/src/protocol/index.ts';

export interface Position {
  offset: number;
  epoch: string;
}

export interface Applied {
  id: string;
  offset?: number;
  epoch?: string;
  at: number;
  /** For `post_liked` events from the drills' publisher: `data.likesCount` is the event's sequence number. */
  seq?: number;
}

export interface Reload {
  at: number;
  /** The position of the `subscribed` reply that said `recovered: false`. */
  position: Position;
}

export interface Reconnect {
  /** `connected` of the new socket (ms since epoch). */
  connectedAt: number;
  /** Close code of the socket before it. */
  afterClose: number;
  /** Failed attempts before this one succeeded. */
  attempts: number;
  /** `recovered` of each channel's `subscribed` reply, in arrival order. */
  recovered: boolean[];
  /** When the last channel's replay was complete (or its reply came, with nothing to replay). */
  recoveredAt?: number;
  replayed: number;
}

interface ChannelState {
  position?: Position;
  applied: Applied[];
  ids: Set<string>;
  reloads: Reload[];
  /** A subscribe is in flight (its request id). */
  pending?: number;
  sentSince?: Position;
  subscribed: boolean;
  /** While a replay runs: the offset it ends at. */
  replayUntil?: number;
  violations: string[];
  resubscribeNotices: number;
  rawDuplicates: number;
  /** notifications_: notification ids received, live or from the database fallback. */
  notificationIds: string[];
  recoveredNotifications: string[][];
  errors: string[];
}

export interface DrillClientOptions {
  urls: string[];
  token: string;
  channels: string[];
  name?: string;
  backoff?: { baseMs: number; capMs: number };
  /** notifications_ channels: the newest notification the client already holds. */
  lastNotificationId?: string;
  random?: () => number;
}

type Frame = { type: string; id?: unknown; channel?: string; [key: string]: unknown };

export class DrillClient {
  readonly name: string;
  readonly closeCodes: number[] = [];
  readonly reconnects: Reconnect[] = [];
  failedAttempts = 0;
  readonly #options: Required<Omit<DrillClientOptions, 'lastNotificationId' | 'name'>>;
  readonly #channels = new Map<string, ChannelState>();
  #lastNotificationId: string | undefined;
  #ws: WebSocket | null = null;
  #stopped = false;
  #urlIndex = 0;
  #attempt = 0;
  #nextId = 1;
  #connectedOnce = false;
  #current: Reconnect | null = null;
  #retryTimer: NodeJS.Timeout | undefined;
  #replies = new Map<number, (frame: Frame) => void>();
  #lastClose = 0;
  #open = false;

  constructor(options: DrillClientOptions) {
    this.name = options.name ?? 'client';
    this.#options = { backoff: { baseMs: 200, capMs: 2_000 }, random: Math.random, ...options };
    this.#lastNotificationId = options.lastNotificationId;
    for (const channel of options.channels) {
      this.#channels.set(channel, {
        applied: [],
        ids: new Set(),
        reloads: [],
        subscribed: false,
        violations: [],
        resubscribeNotices: 0,
        rawDuplicates: 0,
        notificationIds: [],
        recoveredNotifications: [],
        errors: [],
      });
    }
  }

  /** Connects and resolves once every channel is subscribed (rejects after `timeoutMs`). */
  async start(timeoutMs = 15_000): Promise<void> {
    this.#connect();
    await this.until(() => this.allSubscribed, timeoutMs, 'every channel subscribed');
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) ws.terminate();
  }

  get open(): boolean {
    return this.#open;
  }

  get allSubscribed(): boolean {
    return this.#open && [...this.#channels.values()].every((c) => c.subscribed && c.replayUntil === undefined);
  }

  channel(channel: string): Readonly<ChannelState> {
    const state = this.#channels.get(channel);
    if (!state) throw new Error(`${this.name} does not hold ${channel}`);
    return state;
  }

  get lastNotificationId(): string | undefined {
    return this.#lastNotificationId;
  }

  /** Sends a request and resolves with its reply (`pong`, …); rejects after `timeoutMs`. */
  request(frame: Record<string, unknown>, timeoutMs = 5_000): Promise<Frame> {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(`${this.name}: socket not open`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(id);
        reject(new Error(`${this.name}: no reply to ${JSON.stringify(frame)} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#replies.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Polls `predicate` every 20 ms. */
  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // ---- connection -------------------------------------------------------------------------

  #connect(): void {
    if (this.#stopped) return;
    const urls = this.#options.urls;
    const url = urls[this.#urlIndex % urls.length]!;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.#options.token}` } });
    this.#ws = ws;
    ws.on('error', () => {});
    ws.on('message', (data) => {
      if (this.#ws !== ws) return;
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        return;
      }
      this.#onFrame(frame);
    });
    ws.once('close', (code, reason) => {
      if (this.#ws !== ws) return;
      this.#onClose(code, reason.toString());
    });
  }

  #onClose(code: number, reason: string): void {
    const wasOpen = this.#open;
    this.#open = false;
    this.#ws = null;
    for (const state of this.#channels.values()) {
      state.subscribed = false;
      state.pending = undefined;
      state.replayUntil = undefined;
    }
    for (const resolve of this.#replies.values()) resolve({ type: 'closed' });
    this.#replies.clear();
    if (this.#stopped) return;
    if (wasOpen) {
      this.closeCodes.push(code);
      this.#lastClose = code;
    } else {
      this.failedAttempts++;
    }
    // The next URL: a node that is gone is not retried first.
    this.#urlIndex++;
    const { baseMs, capMs } = this.#options.backoff;
    const hint = retryAfterFromReason(reason) ?? 0;
    const delay = hint + Math.floor(this.#options.random() * Math.min(capMs, baseMs * 2 ** this.#attempt));
    this.#attempt = Math.min(this.#attempt + 1, 10);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #onConnected(): void {
    this.#open = true;
    if (this.#connectedOnce) {
      this.#current = { connectedAt: Date.now(), afterClose: this.#lastClose, attempts: this.#attempt, recovered: [], replayed: 0 };
      this.reconnects.push(this.#current);
    }
    this.#connectedOnce = true;
    for (const channel of this.#channels.keys()) this.#subscribe(channel);
  }

  #subscribe(channel: string): void {
    const state = this.#channels.get(channel)!;
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const id = this.#nextId++;
    state.pending = id;
    state.sentSince = state.position ? { ...state.position } : undefined;
    const frame: Record<string, unknown> = { type: 'subscribe', channel, id };
    if (state.position) frame.since = state.position;
    if (state.position && channel.startsWith('notifications_') && this.#lastNotificationId) frame.lastNotificationId = this.#lastNotificationId;
    ws.send(JSON.stringify(frame));
  }

  // ---- frames -----------------------------------------------------------------------------

  #onFrame(frame: Frame): void {
    if (frame.type === 'connected') return this.#onConnected();
    if (typeof frame.id === 'number' && this.#replies.has(frame.id) && ['pong', 'error', 'refreshed', 'unsubscribed'].includes(frame.type)) {
      const resolve = this.#replies.get(frame.id)!;
      this.#replies.delete(frame.id);
      resolve(frame);
      return;
    }
    const channel = typeof frame.channel === 'string' ? frame.channel : undefined;
    const state = channel === undefined ? undefined : this.#channels.get(channel);
    if (!state || channel === undefined) return;
    switch (frame.type) {
      case 'subscribed':
        if (frame.id === state.pending) this.#onSubscribed(channel, state, frame);
        return;
      case 'unsubscribed':
        if (frame.id === undefined && frame.reason === 'resubscribe') {
          // The node could not keep the channel continuous: ask again from our position.
          state.resubscribeNotices++;
          state.subscribed = false;
          this.#subscribe(channel);
        } else if (frame.id === undefined) {
          state.errors.push(`unsubscribed by the server: ${String(frame.reason)}`);
          state.subscribed = false;
        }
        return;
      case 'error':
        if (frame.id !== state.pending) return;
        state.errors.push(`${String(frame.code)}: ${String(frame.message)}`);
        state.pending = undefined;
        if (frame.code === 'internal_error' || frame.code === 'rate_limited') {
          const wait = Number(frame.retryAfterMs ?? 500) + Math.floor(this.#options.random() * 250);
          setTimeout(() => this.#subscribe(channel), wait);
        }
        return;
      default:
        if (isEventType(frame.type)) this.#onPush(channel, state, frame);
    }
  }

  #onSubscribed(channel: string, state: ChannelState, frame: Frame): void {
    state.pending = undefined;
    state.subscribed = true;
    const position = { offset: Number(frame.offset), epoch: String(frame.epoch) };
    const since = state.sentSince;
    if (since === undefined) {
      state.position = position;
    } else if (frame.recovered === true) {
      // The replay up to `position.offset` follows (nothing when we are already there).
      if (position.offset > since.offset) state.replayUntil = position.offset;
    } else {
      state.reloads.push({ at: Date.now(), position });
      state.position = position;
    }
    if (this.#current && since !== undefined) this.#current.recovered.push(frame.recovered === true);
    this.#maybeRecovered();
  }

  #onPush(channel: string, state: ChannelState, frame: Frame): void {
    const id = String(frame.id);
    const now = Date.now();
    if (frame.type === 'notifications_recovered' || frame.type === 'unread_notifications') {
      const list = ((frame.data as { notifications?: Array<{ id: string }> })?.notifications ?? []).map((n) => n.id);
      if (frame.type === 'notifications_recovered') state.recoveredNotifications.push(list);
      for (const nid of list) if (!state.notificationIds.includes(nid)) state.notificationIds.push(nid);
      // Newest first in both frames.
      if (list[0] && frame.type === 'notifications_recovered') this.#lastNotificationId = list[0];
      return;
    }
    if (state.ids.has(id)) {
      state.rawDuplicates++;
      return;
    }
    const offset = typeof frame.offset === 'number' ? frame.offset : undefined;
    const epoch = typeof frame.epoch === 'string' ? frame.epoch : undefined;
    if (offset !== undefined && epoch !== undefined) {
      const at = state.position;
      if (at && epoch === at.epoch && offset <= at.offset) {
        state.rawDuplicates++;
        return;
      }
      if (at && epoch !== at.epoch) state.violations.push(`epoch ${at.epoch} → ${epoch} on a live push (offset ${at.offset} → ${offset}) without a subscribed in between`);
      else if (at && offset !== at.offset + 1) state.violations.push(`gap: offset ${at.offset} → ${offset} in epoch ${epoch}`);
      state.position = { offset, epoch };
    }
    state.ids.add(id);
    const data = frame.data as { likesCount?: unknown; notification?: { id?: unknown } } | undefined;
    const seq = frame.type === 'post_liked' && typeof data?.likesCount === 'number' ? data.likesCount : undefined;
    state.applied.push({ id, offset, epoch, at: now, ...(seq === undefined ? {} : { seq }) });
    if (frame.type === 'notification' && typeof data?.notification?.id === 'string') {
      state.notificationIds.push(data.notification.id);
      this.#lastNotificationId = data.notification.id;
    }
    if (state.replayUntil !== undefined && offset !== undefined && offset >= state.replayUntil) {
      state.replayUntil = undefined;
      if (this.#current) this.#current.replayed++;
      this.#maybeRecovered();
    } else if (state.replayUntil !== undefined && this.#current) {
      this.#current.replayed++;
    }
  }

  /** Every channel answered and replayed: the reconnect is complete. */
  #maybeRecovered(): void {
    if (!this.allSubscribed) return;
    this.#attempt = 0;
    if (this.#current && this.#current.recoveredAt === undefined) this.#current.recoveredAt = Date.now();
  }
}
