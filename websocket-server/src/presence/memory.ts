/**
 * In-process presence: the single-node default when REDIS_URL is not set. The same rules as the
 * Redis store (presence/redis.ts), on this process's clock: entries expire `ttlMs` after their
 * last add, `announce` publishes a changed state at most once per `minIntervalMs`, and
 * announcements go to the handler (this node's subscribers), asynchronously as through Redis.
 */
import {
  EMPTY_VALUES,
  STATE_TTL_MS,
  announcementParts,
  stateValue,
  type AnnounceResult,
  type AnnouncementHandler,
  type Presence,
  type PresenceEntry,
} from './presence.ts';

type ChannelPresence = {
  clients: Map<string, { userId: string; expiresAt: number }>;
  /** The last announced state; `at` 0 when it was recorded without publishing. */
  last: { value: string; at: number; forgetAt: number } | null;
};

export interface MemoryPresenceOptions {
  /** How long an entry counts after its last add (ms). */
  ttlMs?: number;
  /** The clock (ms); tests may move it. */
  now?: () => number;
}

export class MemoryPresence implements Presence {
  readonly kind = 'memory' as const;
  readonly ttlMs: number;
  readonly #now: () => number;
  readonly #channels = new Map<string, ChannelPresence>();
  #handler: AnnouncementHandler = () => {};
  #closed = false;

  constructor({ ttlMs = 10_000, now = Date.now }: MemoryPresenceOptions = {}) {
    this.ttlMs = ttlMs;
    this.#now = now;
  }

  onAnnouncement(handler: AnnouncementHandler): void {
    this.#handler = handler;
  }

  async add(channel: string, entries: readonly PresenceEntry[]): Promise<void> {
    this.#open();
    const expiresAt = this.#now() + this.ttlMs;
    const presence = this.#channel(channel);
    for (const { clientId, userId } of entries) presence.clients.set(clientId, { userId, expiresAt });
  }

  async remove(channel: string, clientIds: readonly string[]): Promise<void> {
    this.#open();
    const presence = this.#channels.get(channel);
    if (!presence) return;
    for (const clientId of clientIds) presence.clients.delete(clientId);
    this.#forgetIfIdle(channel, presence, this.#now());
  }

  async count(channel: string): Promise<number> {
    this.#open();
    const presence = this.#channels.get(channel);
    return presence ? this.#distinct(presence, this.#now()) : 0;
  }

  async announce(channel: string, minIntervalMs: number): Promise<AnnounceResult> {
    this.#open();
    const parts = announcementParts(channel);
    const now = this.#now();
    const presence = this.#channel(channel);
    const value = stateValue(parts.value, this.#distinct(presence, now));
    const last = presence.last && presence.last.forgetAt > now ? presence.last : null;
    const remember = (at: number) => (presence.last = { value, at, forgetAt: now + STATE_TTL_MS });
    let result: AnnounceResult;
    if (last ? last.value === value : EMPTY_VALUES.has(value)) {
      remember(last?.at ?? 0);
      result = { outcome: 'unchanged', value };
    } else if (last && now - last.at < minIntervalMs) {
      presence.last = { ...last, forgetAt: now + STATE_TTL_MS };
      result = { outcome: 'too_soon', value, retryInMs: minIntervalMs - (now - last.at) };
    } else {
      remember(now);
      const payload = parts.head + value + parts.tail;
      queueMicrotask(() => {
        if (!this.#closed) this.#handler(channel, payload);
      });
      result = { outcome: 'published', value };
    }
    this.#forgetIfIdle(channel, presence, now);
    return result;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#channels.clear();
  }

  #open(): void {
    if (this.#closed) throw new Error('presence store is closed');
  }

  #channel(channel: string): ChannelPresence {
    let presence = this.#channels.get(channel);
    if (!presence) {
      presence = { clients: new Map(), last: null };
      this.#channels.set(channel, presence);
      if (this.#channels.size % 1024 === 0) this.#sweep(this.#now());
    }
    return presence;
  }

  /** Idle channels go when new ones arrive, so memory follows the channels in use. */
  #sweep(now: number): void {
    for (const [channel, presence] of this.#channels) {
      this.#distinct(presence, now);
      this.#forgetIfIdle(channel, presence, now);
    }
  }

  /** Drops expired entries, then counts distinct users. */
  #distinct(presence: ChannelPresence, now: number): number {
    const users = new Set<string>();
    for (const [clientId, entry] of presence.clients) {
      if (entry.expiresAt <= now) presence.clients.delete(clientId);
      else users.add(entry.userId);
    }
    return users.size;
  }

  /**
   * A channel without entries whose remembered state is forgotten, or empty and a minute old
   * (long past any announcement interval), holds nothing worth keeping; Redis lets such keys
   * expire.
   */
  #forgetIfIdle(channel: string, presence: ChannelPresence, now: number): void {
    if (presence.clients.size > 0) return;
    const last = presence.last;
    if (!last || last.forgetAt <= now || (EMPTY_VALUES.has(last.value) && now - last.at >= 60_000)) this.#channels.delete(channel);
  }
}
