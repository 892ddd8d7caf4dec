/**
 * The leader tab's hub: the one real RealtimeClient (socket, backoff, session refresh, close
 * codes, recovery; client.ts) of every tab of this user in this browser profile, serving the
 * tabs' links (follower.ts, the leader's own tab included) over the TabChannel. To a link it
 * speaks the server's protocol: `connected`, then `subscribed`/`error`/`unsubscribed` replies
 * with the tab's own request ids, and the channel's pushes; `ping` is answered here, `typing`
 * goes to the server. Per channel, hub-channel.ts.
 *
 * After a handover the tabs still hold their positions; the new hub waits, before it adds its
 * channels to the real client, until every live tab (those holding a presence lock, see
 * shared-client.ts) has re-asked, at most `collectMs`, so each channel continues from the
 * oldest position any tab holds and the server's history fills the gap for all of them. The
 * real client connects meanwhile.
 */
import { BROADCAST_CHANNEL, type BroadcastPayload, type ClientFrame, type PushFrame, type ServerFrame } from '@/websocket-server/src/protocol/index.ts';
import type { RealtimeClient } from '../client.ts';
import { HubChannel, oldestSince } from './hub-channel.ts';
import type { TabChannel, TabMessage } from './tab-channel.ts';

export interface RealtimeHubOptions {
  id: string;
  userId: string;
  channel: TabChannel;
  /** The real client, not started yet; the hub starts and stops it. */
  client: RealtimeClient;
  /** The ids of the tabs alive now (this one included). */
  liveTabs: () => Promise<string[]>;
  /** Longest wait for the live tabs' subscribes after becoming leader (ms). */
  collectMs?: number;
  /** How often tabs that went away without a word are forgotten (ms). */
  pruneIntervalMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export class RealtimeHub {
  readonly id: string;
  readonly client: RealtimeClient;
  readonly #options: RealtimeHubOptions;
  readonly #tabs = new Set<string>();
  readonly #ready = new Set<string>();
  readonly #channels = new Map<string, HubChannel>();
  readonly #removers: (() => void)[] = [];
  #collecting = true;
  #expected: Set<string> | null = null;
  #collectTimer: ReturnType<typeof setTimeout> | undefined;
  #pruneTimer: ReturnType<typeof setInterval> | undefined;
  #lastBroadcast: PushFrame | null = null;
  #stopped = false;

  constructor(options: RealtimeHubOptions) {
    this.#options = options;
    this.id = options.id;
    this.client = options.client;
  }

  start(): void {
    const { channel, client } = this.#options;
    this.#removers.push(channel.listen((message) => this.#onMessage(message)));
    this.#removers.push(client.subscribeState(() => this.#onState()));
    this.#removers.push(client.onBroadcast((payload, meta) => this.#onBroadcast(payload, meta)));
    client.start();
    channel.post({ kind: 'hello', hub: this.id });
    this.#collectTimer = setTimeout(() => this.#endCollection('timeout'), this.#options.collectMs ?? 500);
    void this.#options
      .liveTabs()
      .then((tabs) => {
        this.#expected = new Set(tabs);
        this.#checkCollection();
      })
      .catch(() => this.#endCollection('no list of tabs'));
    this.#pruneTimer = setInterval(() => void this.#prune(), this.#options.pruneIntervalMs ?? 15_000);
  }

  /** Stops the real client (closing the socket) and tells the tabs; idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#collectTimer);
    clearInterval(this.#pruneTimer);
    for (const remove of this.#removers.splice(0)) remove();
    for (const channel of this.#channels.values()) channel.dispose();
    this.#channels.clear();
    this.#options.client.stop();
    this.#options.channel.post({ kind: 'bye', hub: this.id });
  }

  #onMessage(message: TabMessage): void {
    if (this.#stopped) return;
    switch (message.kind) {
      case 'attach':
        this.#leaveAll(message.tab);
        this.#tabs.add(message.tab);
        this.#ready.delete(message.tab);
        this.#options.channel.post({ kind: 'welcome', hub: this.id, to: message.tab, userId: this.#options.userId, snapshot: this.client.getSnapshot() });
        if (this.#lastBroadcast) this.#deliver(message.tab, [this.#lastBroadcast]);
        return;
      case 'ready':
        if (message.hub !== this.id) return;
        this.#ready.add(message.tab);
        this.#checkCollection();
        return;
      case 'frame':
        if (message.hub === this.id && this.#tabs.has(message.tab)) this.#onFrame(message.tab, message.frame);
        return;
      case 'detach':
        if (message.hub !== this.id) return;
        this.#leaveAll(message.tab);
        this.#tabs.delete(message.tab);
        this.#ready.delete(message.tab);
        return;
      case 'retry':
        if (message.hub === this.id) this.client.retryNow();
        return;
      case 'hello':
        if (message.hub !== this.id) this.#log('another hub said hello', { other: message.hub });
        return;
      default:
        // Messages of the hub side (welcome, deliver, state, bye) are for the links.
        return;
    }
  }

  #onFrame(tab: string, frame: ClientFrame): void {
    // The server checks every frame; only what the hub itself reads must have its shape here.
    if ((frame.type === 'subscribe' || frame.type === 'unsubscribe') && typeof frame.channel !== 'string') return;
    switch (frame.type) {
      case 'subscribe': {
        let channel = this.#channels.get(frame.channel);
        if (!channel) {
          channel = new HubChannel(frame.channel, {
            deliver: (to, frames) => this.#deliver(to, frames),
            subscribeUpstream: (name, listener) => this.client.subscribe(name, listener),
            position: (name) => this.client.channelPosition(name),
            log: (message, fields) => this.#log(message, fields),
          });
          this.#channels.set(frame.channel, channel);
        }
        channel.request(tab, { id: frame.id, since: frame.since, lastNotificationId: frame.lastNotificationId });
        if (!this.#collecting && !channel.attached) channel.attach(frame.since ?? null);
        return;
      }
      case 'unsubscribe': {
        this.#leave(frame.channel, tab);
        this.#deliver(tab, [{ type: 'unsubscribed', channel: frame.channel, ...(frame.id === undefined ? {} : { id: frame.id }) }]);
        return;
      }
      case 'ping':
        this.#deliver(tab, [{ type: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }), ts: Date.now() }]);
        return;
      case 'typing':
        this.client.send(frame);
        return;
      case 'refresh':
        // Links never send one (their `connected` has no expiry); the real client refreshes itself.
        return;
    }
  }

  #leave(name: string, tab: string): void {
    const channel = this.#channels.get(name);
    if (channel?.leave(tab)) {
      channel.dispose();
      this.#channels.delete(name);
    }
  }

  #leaveAll(tab: string): void {
    for (const name of [...this.#channels.keys()]) this.#leave(name, tab);
  }

  #deliver(tab: string, frames: ServerFrame[]): void {
    if (frames.length > 0) this.#options.channel.post({ kind: 'deliver', hub: this.id, to: tab, frames });
  }

  #onState(): void {
    const snapshot = this.client.getSnapshot();
    if (snapshot.state !== 'open') for (const channel of this.#channels.values()) channel.socketLost();
    this.#options.channel.post({ kind: 'state', hub: this.id, snapshot });
  }

  #onBroadcast(payload: BroadcastPayload, meta: { id: string; ts: number }): void {
    // The server's id, kept: a tab that dismissed a notice recognises it under any leader.
    const frame = { type: 'broadcast', channel: BROADCAST_CHANNEL, id: meta.id, ts: meta.ts, data: payload } as PushFrame;
    this.#lastBroadcast = frame;
    for (const tab of this.#tabs) this.#deliver(tab, [frame]);
  }

  #checkCollection(): void {
    if (!this.#collecting || !this.#expected) return;
    for (const tab of this.#expected) if (!this.#ready.has(tab)) return;
    this.#endCollection('every live tab asked');
  }

  /** From here on channels continue from the oldest position their tabs asked with. */
  #endCollection(why: string): void {
    if (!this.#collecting || this.#stopped) return;
    this.#collecting = false;
    clearTimeout(this.#collectTimer);
    this.#log('hub collected the tabs’ channels', { why, tabs: this.#ready.size, channels: this.#channels.size });
    for (const channel of this.#channels.values()) {
      if (!channel.attached) channel.attach(oldestSince(channel.pendingRequests()));
    }
  }

  /** Forgets tabs whose presence lock is gone (closed without a detach). */
  async #prune(): Promise<void> {
    let live: Set<string>;
    try {
      live = new Set(await this.#options.liveTabs());
    } catch {
      return;
    }
    for (const tab of [...this.#tabs]) {
      if (live.has(tab) || this.#stopped) continue;
      this.#leaveAll(tab);
      this.#tabs.delete(tab);
      this.#ready.delete(tab);
    }
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#options.log?.(message, fields);
  }
}
