/**
 * This node's side of presence (presence/presence.ts). The server tells it when a socket opens
 * and closes and when a connection joins or leaves a `post_` channel; it keeps per channel how
 * many local holders each user has, and writes to the store only when that goes 0 → 1 (add) or
 * 1 → 0 (remove), each followed by an announce. Every `refreshIntervalMs` (ttl / 3; a round
 * spread over ticks of 100 ms) it re-adds all of this node's entries, so they never expire
 * while the node lives, and announces every channel its clients watch (creator_ and post_
 * channels with local subscribers): that is how another node's death becomes an announcement,
 * once its entries have expired. Only creators' sockets hold a creator_ entry (server.ts):
 * nobody can subscribe to anyone else's.
 *
 * A node that dies stops counting after at most ttl (its entries' expiry) + ttl / 3 (the next
 * sweep of a node that watches the channel), plus up to 1 s for viewers (the interval between
 * two announcements). With the default PRESENCE_TTL_MS of 10 s: ≤ 13.3 s, ≤ 14.3 s for viewers.
 *
 * Store operations of one channel run one after another, so an add, a remove and a refresh
 * reach the store in the order they happened here, and the state a subscriber reads
 * (`state`) includes its own arrival. A failing store (Redis down) is logged and skipped: the
 * next refresh writes everything again, and what a failed remove left expires by itself.
 * The client id of an entry is this process's random instance id and the user id, so two
 * processes with the same NODE_ID, or a restarted one, never share entries.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';
import { channelName } from '../protocol/index.ts';
import { presenceEvent, presenceKindOf, type Presence, type PresenceEntry, type PresenceEvent } from './presence.ts';

/** Viewers of a post are announced at most once per this, on all nodes together (ms). */
export const VIEWERS_INTERVAL_MS = 1_000;

/** What the subscriptions of a connection report (subscriptions.ts). */
export interface PresenceHooks {
  joined(channel: string, userId: string): void;
  left(channel: string, userId: string): void;
}

/** What a channel policy reads for its state push (channels/creator.ts, channels/post.ts). */
export interface PresenceReader {
  /** The channel's presence state now, on every node; null if it has none or the store failed. */
  state(channel: string): Promise<PresenceEvent | null>;
}

export interface PresenceTrackerOptions {
  logger: Logger;
  /** Channels with subscribers on this node. */
  watched: () => Iterable<string>;
  /** Between two refreshes of this node's entries (ms); default the store's ttl / 3. */
  refreshIntervalMs?: number;
  /** Least time between two `viewers` announcements of a post (ms); default 1 s. */
  viewersIntervalMs?: number;
}

/**
 * A refresh round is spread over ticks of this (ms), like the heartbeat: one Lua call per channel
 * all in one event-loop turn was a 150–300 ms stall every 3.3 s at 10,000 tracked channels
 * (bench/compare targeted scenario), and every delivery in flight waited behind it.
 */
const REFRESH_SLICE_MS = 100;

/** Store failures are logged at warn at most once per this (ms), at debug otherwise. */
const WARN_EVERY_MS = 10_000;

export class PresenceTracker implements PresenceHooks, PresenceReader {
  readonly #store: Presence;
  readonly #logger: Logger;
  readonly #watched: () => Iterable<string>;
  readonly #refreshMs: number;
  readonly #viewersMs: number;
  readonly #instance = randomBytes(6).toString('base64url');
  /** channel → user → local holders (sockets for creator_, subscriptions for post_). */
  readonly #local = new Map<string, Map<string, number>>();
  /** The last store operation of each channel: the next one starts after it. */
  readonly #chains = new Map<string, Promise<void>>();
  /** Channels whose last queued operation is an announce: another one would say the same. */
  readonly #announceQueued = new Set<string>();
  /** Announcements that were too soon, waiting to be tried again. */
  readonly #retries = new Map<string, NodeJS.Timeout>();
  #timer: NodeJS.Timeout | undefined;
  /** The current refresh round: what is left to refresh (channels) and to announce. */
  #round: { refresh: string[]; announce: string[]; perTick: number } | undefined;
  #ticksLeft = 0;
  #closing: Promise<void> | undefined;
  #lastWarning = 0;

  constructor(store: Presence, options: PresenceTrackerOptions) {
    this.#store = store;
    this.#logger = options.logger.child({ component: 'presence' });
    this.#watched = options.watched;
    this.#refreshMs = options.refreshIntervalMs ?? Math.max(50, Math.floor(store.ttlMs / 3));
    this.#viewersMs = options.viewersIntervalMs ?? VIEWERS_INTERVAL_MS;
  }

  /** A socket of `userId` opened on this node. */
  connected(userId: string): void {
    const channel = channelName.creator(userId);
    if (presenceKindOf(channel)) this.#hold(channel, userId);
  }

  disconnected(userId: string): void {
    this.#release(channelName.creator(userId), userId);
  }

  joined(channel: string, userId: string): void {
    if (presenceKindOf(channel)?.kind === 'post') this.#hold(channel, userId);
  }

  left(channel: string, userId: string): void {
    if (presenceKindOf(channel)?.kind === 'post') this.#release(channel, userId);
  }

  async state(channel: string): Promise<PresenceEvent | null> {
    if (!presenceKindOf(channel)) return null;
    try {
      await this.#chains.get(channel);
      return presenceEvent(channel, await this.#store.count(channel));
    } catch (error) {
      this.#warn('presence state could not be read', channel, error);
      return null;
    }
  }

  start(): void {
    if (this.#timer || this.#closing) return;
    this.#timer = setInterval(() => this.#tick(), Math.min(REFRESH_SLICE_MS, this.#refreshMs));
    this.#timer.unref();
  }

  /** Takes this node's entries away (announcing the change) and stops. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#timer);
    for (const timer of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
    for (const [channel, users] of this.#local) {
      const clientIds = [...users.keys()].map((userId) => this.#clientId(userId));
      this.#run(channel, () => this.#store.remove(channel, clientIds));
      this.#announce(channel);
    }
    this.#local.clear();
    await Promise.all(this.#chains.values());
  }

  #hold(channel: string, userId: string): void {
    if (this.#closing) return;
    let users = this.#local.get(channel);
    if (!users) this.#local.set(channel, (users = new Map()));
    const held = users.get(userId) ?? 0;
    users.set(userId, held + 1);
    if (held > 0) return;
    this.#run(channel, () => this.#store.add(channel, [this.#entry(userId)]));
    this.#announce(channel);
  }

  #release(channel: string, userId: string): void {
    const users = this.#local.get(channel);
    const held = users?.get(userId);
    if (!users || !held) return;
    if (held > 1) {
      users.set(userId, held - 1);
      return;
    }
    users.delete(userId);
    if (users.size === 0) this.#local.delete(channel);
    this.#run(channel, () => this.#store.remove(channel, [this.#clientId(userId)]));
    this.#announce(channel);
  }

  /** Announces after the channel's queued writes; a too-soon answer is tried again when due. */
  #announce(channel: string): void {
    // A retry is due: it will announce whatever the state is then.
    if (this.#retries.has(channel) || this.#announceQueued.has(channel)) return;
    const interval = presenceKindOf(channel)?.kind === 'post' ? this.#viewersMs : 0;
    this.#run(
      channel,
      async () => {
        const result = await this.#store.announce(channel, interval);
        if (result.outcome !== 'too_soon' || this.#closing || this.#retries.has(channel)) return;
        const timer = setTimeout(() => {
          this.#retries.delete(channel);
          this.#announce(channel);
        }, result.retryInMs);
        timer.unref();
        this.#retries.set(channel, timer);
      },
      true,
    );
  }

  /**
   * One slice of the round. Every `refreshMs` a round starts: every local entry is refreshed,
   * then every watched channel announced (expiries elsewhere), a share of them per tick. A
   * channel's two refreshes are at most two rounds apart (first in one, last in the next), well
   * inside the ttl of three.
   */
  #tick(): void {
    if (this.#ticksLeft <= 0) {
      const ticks = Math.max(1, Math.round(this.#refreshMs / Math.min(REFRESH_SLICE_MS, this.#refreshMs)));
      const refresh = [...this.#local.keys()];
      const announce = [...this.#watched()].filter((channel) => presenceKindOf(channel) !== null);
      this.#round = { refresh, announce, perTick: Math.ceil((refresh.length + announce.length) / ticks) };
      this.#ticksLeft = ticks;
    }
    this.#ticksLeft -= 1;
    const round = this.#round;
    if (!round) return;
    let budget = round.perTick;
    while (budget > 0 && round.refresh.length > 0) {
      const channel = round.refresh.pop()!;
      budget -= 1;
      // Gone since the round began: released, nothing of it is left to refresh.
      if (this.#local.has(channel)) this.#run(channel, () => this.#store.add(channel, this.#entriesOf(channel)));
    }
    // Announced after the refreshes, so no node reads its own entries as expired.
    while (budget > 0 && round.refresh.length === 0 && round.announce.length > 0) {
      budget -= 1;
      this.#announce(round.announce.pop()!);
    }
  }

  /** Runs `op` after the channel's earlier operations; a failure is logged, never thrown. */
  #run(channel: string, op: () => Promise<void>, isAnnounce = false): void {
    const previous = this.#chains.get(channel) ?? Promise.resolve();
    const next = previous.then(op).catch((error: unknown) => this.#warn('presence store operation failed', channel, error));
    this.#chains.set(channel, next);
    if (isAnnounce) this.#announceQueued.add(channel);
    else this.#announceQueued.delete(channel);
    void next.then(() => {
      if (this.#chains.get(channel) !== next) return;
      this.#chains.delete(channel);
      this.#announceQueued.delete(channel);
    });
  }

  /** This node's entries of `channel` as they are when the write runs. */
  #entriesOf(channel: string): PresenceEntry[] {
    return [...(this.#local.get(channel)?.keys() ?? [])].map((userId) => this.#entry(userId));
  }

  #entry(userId: string): PresenceEntry {
    return { clientId: this.#clientId(userId), userId };
  }

  #clientId(userId: string): string {
    return `${this.#instance}/${userId}`;
  }

  #warn(message: string, channel: string, error: unknown): void {
    const fields = { channel, error: error instanceof Error ? error.message : String(error) };
    const now = Date.now();
    if (now - this.#lastWarning < WARN_EVERY_MS) {
      this.#logger.debug(message, fields);
      return;
    }
    this.#lastWarning = now;
    this.#logger.warn(`${message} (the next refresh writes every entry again)`, fields);
  }
}
