/**
 * One socket per browser profile and user: the tabs of a signed-in user share one WebSocket
 * (ADR 0014). Each tab has this client; one of them, elected by a Web Lock named
 * `fonana-realtime:<userId>`, also runs the hub (leader.ts) with the real RealtimeClient. Every
 * tab, the leader's too, keeps its channels in a RealtimeClient of its own whose socket is a
 * link to the hub (follower.ts), so a tab's positions and de-duplication survive a change of
 * leader: when the leader's tab closes, the browser hands the lock to the next tab that asked
 * for it, that tab's hub connects, and every tab subscribes again with `since` where it was.
 *
 * The connection state every tab shows is the hub's (mirrored over the TabChannel). Each tab
 * also holds a lock `fonana-realtime:<userId>:tab:<tabId>` while it lives, so a new hub knows
 * which tabs to wait for (leader.ts) and forgets tabs that went away without a word.
 *
 * Where BroadcastChannel or Web Locks are missing (canShareTabs), the provider gives each tab a
 * plain RealtimeClient instead, as before.
 */
import { RealtimeClient, type ChannelListener } from '../client.ts';
import type { ConnectionSnapshot } from '../state.ts';
import type { RealtimeConnection } from './connection.ts';
import { HubLink } from './follower.ts';
import { RealtimeHub } from './leader.ts';
import { sharedName, TabChannel, type BroadcastChannelLike } from './tab-channel.ts';

/** The surface of `navigator.locks` used here. */
export interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

export interface SharedRealtimeClientOptions {
  userId: string;
  /** The real client, created when this tab becomes the leader (the provider's usual one). */
  createUpstream: () => RealtimeClient;
  location: { protocol: string; host: string };
  locks?: LocksLike;
  openChannel?: (name: string) => BroadcastChannelLike;
  /** This tab's id (random by default). */
  tabId?: string;
  onLog?: (message: string, fields?: Record<string, unknown>) => void;
}

const CONNECTING: ConnectionSnapshot = { state: 'connecting', attempt: 0, closedReason: null, lastCloseCode: null };
const STOPPED: ConnectionSnapshot = { state: 'closed', attempt: 0, closedReason: 'stopped', lastCloseCode: null };

function randomId(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : Math.random().toString(36).slice(2);
}

export class SharedRealtimeClient implements RealtimeConnection {
  readonly tabId: string;
  readonly #options: SharedRealtimeClientOptions;
  readonly #name: string;
  /** This tab's channels; its socket is the link. */
  readonly #tab: RealtimeClient;
  readonly #stateListeners = new Set<() => void>();
  #snapshot: ConnectionSnapshot = STOPPED;
  #channel: TabChannel | null = null;
  #link: HubLink | null = null;
  #hub: RealtimeHub | null = null;
  #abort: AbortController | null = null;
  #releaseLocks: (() => void)[] = [];
  #running = false;

  constructor(options: SharedRealtimeClientOptions) {
    this.#options = options;
    this.tabId = options.tabId ?? randomId();
    this.#name = sharedName(options.userId);
    this.#tab = new RealtimeClient({
      // The hub's client fetches tokens; the link needs none.
      endpoint: async () => ({ url: '/', token: null, expiresAt: null }),
      createSocket: () => {
        if (!this.#link) throw new Error('the shared client is not started');
        return this.#link.open();
      },
      location: options.location,
      // A lost link is a change of leader: back at once, with a little jitter, and never give up.
      backoff: { baseMs: 50, capMs: 1_000 },
      maxAttempts: Number.MAX_SAFE_INTEGER,
      stableAfterMs: 1_000,
      probeIntervalMs: 0,
      ...(options.onLog ? { onLog: (message: string, fields?: Record<string, unknown>) => options.onLog?.(`tab: ${message}`, fields) } : {}),
    });
  }

  // ---- lifecycle ------------------------------------------------------------------------

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const channel = new TabChannel(this.#name, this.#options.openChannel, (error) => this.#log('a tab message handler threw', { error: error.message }));
    this.#channel = channel;
    this.#link = new HubLink(channel, this.tabId, {
      snapshot: (snapshot) => this.#setSnapshot(snapshot),
      lost: () => this.#setSnapshot({ ...this.#snapshot, state: 'reconnecting', closedReason: null }),
    });
    this.#link.start();
    this.#setSnapshot(CONNECTING);
    this.#tab.start();

    const abort = new AbortController();
    this.#abort = abort;
    const locks = this.#locks();
    const hold = (name: string, held: () => void) =>
      locks
        .request(name, { signal: abort.signal }, () => {
          if (abort.signal.aborted) return Promise.resolve();
          held();
          return new Promise<void>((release) => this.#releaseLocks.push(release));
        })
        .catch((error: Error) => {
          if (error.name !== 'AbortError') this.#log('a lock request failed', { error: error.message });
        });
    void hold(`${this.#name}:tab:${this.tabId}`, () => {});
    void hold(this.#name, () => this.#lead(channel));
  }

  /** Ends this tab's part: as the leader, its socket closes and the next tab takes over. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#abort?.abort();
    this.#abort = null;
    this.#hub?.stop();
    this.#hub = null;
    for (const release of this.#releaseLocks.splice(0)) release();
    this.#tab.stop();
    this.#link?.stop();
    this.#link = null;
    this.#channel?.close();
    this.#channel = null;
    this.#setSnapshot(STOPPED);
  }

  /** Whether this tab holds the socket now (for tests and logs). */
  get leading(): boolean {
    return this.#hub !== null;
  }

  retryNow(): void {
    this.#link?.retry();
    this.#tab.retryNow();
  }

  // ---- state: the hub's ----------------------------------------------------------------

  getSnapshot = (): ConnectionSnapshot => this.#snapshot;

  subscribeState = (listener: () => void): (() => void) => {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  };

  // ---- channels: this tab's -------------------------------------------------------------

  channelStatus: RealtimeClient['channelStatus'] = (channel) => this.#tab.channelStatus(channel);
  channelPosition: RealtimeClient['channelPosition'] = (channel) => this.#tab.channelPosition(channel);
  send: RealtimeClient['send'] = (frame) => this.#tab.send(frame);
  subscribeChannelStatus: RealtimeClient['subscribeChannelStatus'] = (listener) => this.#tab.subscribeChannelStatus(listener);
  subscribe = (channel: string, listener: ChannelListener): (() => void) => this.#tab.subscribe(channel, listener);
  onBroadcast: RealtimeClient['onBroadcast'] = (listener) => this.#tab.onBroadcast(listener);

  // ---- leading --------------------------------------------------------------------------

  #lead(channel: TabChannel): void {
    if (!this.#running || this.#channel !== channel) return;
    this.#log('this tab leads: it opens the shared socket');
    const prefix = `${this.#name}:tab:`;
    this.#hub = new RealtimeHub({
      id: `${this.tabId}:${Date.now().toString(36)}`,
      userId: this.#options.userId,
      channel,
      client: this.#options.createUpstream(),
      liveTabs: async () => {
        const { held = [] } = await this.#locks().query();
        return held.flatMap(({ name }) => (name?.startsWith(prefix) ? [name.slice(prefix.length)] : []));
      },
      ...(this.#options.onLog ? { log: this.#options.onLog } : {}),
    });
    this.#hub.start();
  }

  #locks(): LocksLike {
    return this.#options.locks ?? (navigator.locks as unknown as LocksLike);
  }

  #setSnapshot(snapshot: ConnectionSnapshot): void {
    if (snapshot === this.#snapshot) return;
    this.#snapshot = snapshot;
    for (const listener of [...this.#stateListeners]) listener();
  }

  #log(message: string, fields?: Record<string, unknown>): void {
    this.#options.onLog?.(message, fields);
  }
}
