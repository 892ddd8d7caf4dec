/**
 * One channel in the leader's hub: the tabs that hold it, one listener on the hub's real
 * RealtimeClient for all of them, and a short log of what that listener applied, so that a tab
 * asking with `since` is answered as the server would (subscribed, then the events after its
 * position, in order) without the server subscribing the connection twice (it holds a channel
 * once per connection and answers a second subscribe with its position only).
 *
 * The hub's RealtimeClient orders, de-duplicates and recovers the channel against the server
 * (subscription.ts); each tab runs its own Subscription on top (follower.ts), which drops what
 * it already applied. A tab's `since` is covered when it lies in the log (same epoch, not older
 * than the log's start): `recovered: true` and the events after it. Otherwise `recovered:
 * false` at the hub's position, and the tab reloads, as a component joining a live channel
 * behind it would in one tab.
 *
 * The listener on the real client is added once, with `since` the oldest position of the tabs
 * that asked before (see RealtimeHub's collection after a handover), so the server replays from
 * the tab furthest behind and every tab is covered.
 */
import type {
  ErrorFrame,
  EventType,
  PushFrame,
  RequestId,
  ServerFrame,
  StreamPosition,
  UnsubscribeReason,
} from '@/websocket-server/src/protocol/index.ts';
import type { ChannelListener, SubscribedInfo } from '../subscription.ts';
import { positionOf } from '../subscription.ts';

/** Events kept per channel for tabs that ask with `since` (the server's post_ window is 200). */
const LOG_LIMIT = 200;
/** Pushed by the server at a position without moving it: the newest one is kept for joiners. */
const SNAPSHOT_TYPES: ReadonlySet<EventType> = new Set<EventType>(['unread_notifications', 'notifications_recovered']);
/** Current state without a position (presence), sent after every subscribe: kept for joiners. */
const STATE_TYPES: ReadonlySet<EventType> = new Set<EventType>(['viewers', 'creator_presence']);

type Refusal = { code: ErrorFrame['code']; message: string; retryAfterMs?: number };

export interface TabSubscribe {
  id?: RequestId | undefined;
  since?: StreamPosition | undefined;
  lastNotificationId?: string | undefined;
}

export interface HubChannelHost {
  deliver(tab: string, frames: ServerFrame[]): void;
  /** Adds the channel's one listener to the hub's real client; returns its remover. */
  subscribeUpstream(channel: string, listener: ChannelListener): () => void;
  /** The real client's position for the channel (its last applied push or `subscribed`). */
  position(channel: string): StreamPosition | null;
  log(message: string, fields?: Record<string, unknown>): void;
}

/** The oldest `since` of the requests, within the first one's epoch. */
export function oldestSince(requests: Iterable<TabSubscribe>): StreamPosition | null {
  let oldest: StreamPosition | null = null;
  for (const { since } of requests) {
    if (!since) continue;
    if (!oldest) oldest = since;
    else if (since.epoch === oldest.epoch && since.offset < oldest.offset) oldest = since;
  }
  return oldest && { offset: oldest.offset, epoch: oldest.epoch };
}

export class HubChannel {
  readonly name: string;
  readonly #host: HubChannelHost;
  /** Tabs answered on this channel: every applied push goes to them. */
  readonly #members = new Set<string>();
  /** Tabs waiting for the real client's confirmation, with their request. */
  readonly #pending = new Map<string, TabSubscribe>();
  readonly #lastNotificationIds = new Map<string, string>();
  #removeUpstream: (() => void) | null = null;
  /** The real client confirmed the channel on its current socket. */
  #confirmed = false;
  /** The server refused it on the current socket, or ended it (access lost). */
  #refusal: Refusal | null = null;
  /** Where the log continues from: every applied push after it is in `#log`. */
  #logStart: StreamPosition | null = null;
  #log: PushFrame[] = [];
  #snapshot: PushFrame | null = null;
  readonly #state = new Map<EventType, PushFrame>();

  constructor(name: string, host: HubChannelHost) {
    this.name = name;
    this.#host = host;
  }

  get empty(): boolean {
    return this.#members.size === 0 && this.#pending.size === 0;
  }

  get attached(): boolean {
    return this.#removeUpstream !== null;
  }

  /** The requests waiting, to choose where the real client continues from. */
  pendingRequests(): TabSubscribe[] {
    return [...this.#pending.values()];
  }

  /** Adds the one listener to the real client, continuing from `since`. */
  attach(since: StreamPosition | null): void {
    if (this.#removeUpstream) return;
    this.#removeUpstream = this.#host.subscribeUpstream(this.name, {
      since,
      lastNotificationId: () => this.#lastNotificationIds.values().next().value,
      onEvent: (frame) => this.#onEvent(frame),
      onSubscribed: (info) => this.#onSubscribed(info),
      onError: (error) => this.#onRefused({ code: error.code, message: error.message, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) }),
      onRevoked: (reason, message) => this.#onRevoked(reason, message),
    });
  }

  /** A tab's subscribe (its first, or again after a reconnect, a gap or a resubscribe). */
  request(tab: string, request: TabSubscribe): void {
    this.#members.delete(tab);
    if (request.lastNotificationId) this.#lastNotificationIds.set(tab, request.lastNotificationId);
    if (this.#refusal) {
      this.#host.deliver(tab, [{ type: 'error', channel: this.name, ...idOf(request.id), ...this.#refusal }]);
      return;
    }
    if (this.#confirmed) this.#answer(tab, request);
    else this.#pending.set(tab, request);
  }

  /** The tab unsubscribed or went away; true when no tab holds the channel any more. */
  leave(tab: string): boolean {
    this.#members.delete(tab);
    this.#pending.delete(tab);
    this.#lastNotificationIds.delete(tab);
    return this.empty;
  }

  /** The real client's socket is gone: it asks again on the next one. */
  socketLost(): void {
    this.#confirmed = false;
    this.#refusal = null;
  }

  dispose(): void {
    this.#removeUpstream?.();
    this.#removeUpstream = null;
    this.#members.clear();
    this.#pending.clear();
  }

  #answer(tab: string, request: TabSubscribe): void {
    const head = this.#host.position(this.name);
    const since = request.since;
    const frames: ServerFrame[] = [];
    const at = head ? { offset: head.offset, epoch: head.epoch } : { offset: 0, epoch: '' };
    if (since && this.#covers(since)) {
      frames.push({ type: 'subscribed', channel: this.name, ...idOf(request.id), ...at, recovered: true });
      for (const frame of this.#log) if (frame.epoch === since.epoch && (frame.offset ?? 0) > since.offset) frames.push(frame);
    } else {
      // From the last snapshot when the log holds every event after it (the server, too, starts
      // a fresh subscribe with its snapshot): the tab's state is whole at once (the bell's
      // unread count), not only after its own fetch. Otherwise from the hub's position, where
      // the tab's Subscription drops the older snapshot.
      const snapshot = this.#snapshot;
      const from = snapshot && positionOf(snapshot);
      const start = from && this.#covers(from) ? from : null;
      frames.push({ type: 'subscribed', channel: this.name, ...idOf(request.id), ...(start ?? at), ...(since ? { recovered: false } : {}) });
      if (snapshot) frames.push(snapshot);
      if (start) for (const frame of this.#log) if (frame.epoch === start.epoch && (frame.offset ?? 0) > start.offset) frames.push(frame);
    }
    frames.push(...this.#state.values());
    this.#members.add(tab);
    this.#host.deliver(tab, frames);
  }

  #covers(since: StreamPosition): boolean {
    const start = this.#logStart;
    return start !== null && since.epoch === start.epoch && since.offset >= start.offset;
  }

  #onSubscribed(info: SubscribedInfo): void {
    this.#confirmed = true;
    this.#refusal = null;
    const head = this.#host.position(this.name);
    if (info.recovered !== true || this.#logStart === null) {
      // A first subscribe, or events were lost: the log starts at the real client's position.
      this.#logStart = head && { offset: head.offset, epoch: head.epoch };
      this.#log = [];
      if (info.recovered === false) this.#askMembersAgain();
    }
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [tab, request] of pending) this.#answer(tab, request);
  }

  #onEvent(frame: PushFrame): void {
    const at = positionOf(frame);
    if (SNAPSHOT_TYPES.has(frame.type)) this.#snapshot = frame;
    else if (at) {
      if (this.#logStart === null || this.#logStart.epoch !== at.epoch) {
        this.#logStart = { offset: at.offset - 1, epoch: at.epoch };
        this.#log = [];
      }
      this.#log.push(frame);
      if (this.#log.length > LOG_LIMIT) {
        const dropped = this.#log.shift();
        const from = dropped && positionOf(dropped);
        if (from) this.#logStart = from;
      }
    } else if (STATE_TYPES.has(frame.type)) this.#state.set(frame.type, frame);
    for (const tab of this.#members) this.#host.deliver(tab, [frame]);
  }

  #onRefused(refusal: Refusal): void {
    this.#confirmed = false;
    this.#refusal = refusal;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [tab, request] of pending) this.#host.deliver(tab, [{ type: 'error', channel: this.name, ...idOf(request.id), ...refusal }]);
    // Members subscribed before (a reconnect the server now refuses) ask again and hear it.
    this.#askMembersAgain();
  }

  #onRevoked(reason: UnsubscribeReason, message: string): void {
    this.#confirmed = false;
    this.#refusal = { code: 'forbidden', message };
    for (const tab of this.#members) this.#host.deliver(tab, [{ type: 'unsubscribed', channel: this.name, reason, message }]);
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [tab, request] of pending) this.#host.deliver(tab, [{ type: 'error', channel: this.name, ...idOf(request.id), code: 'forbidden', message }]);
  }

  /** The server's `resubscribe` to each member: it asks again with its `since` and hears the answer. */
  #askMembersAgain(): void {
    const members = [...this.#members];
    this.#members.clear();
    for (const tab of members) {
      this.#host.deliver(tab, [{ type: 'unsubscribed', channel: this.name, reason: 'resubscribe', message: 'the shared connection lost continuity; subscribe again with since' }]);
    }
  }
}

function idOf(id: RequestId | undefined): { id?: RequestId } {
  return id === undefined ? {} : { id };
}
