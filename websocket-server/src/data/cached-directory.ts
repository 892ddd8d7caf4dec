/**
 * What the database says about principals and post access, cached in memory, so that a
 * reconnect storm or a page of subscribes does not cost a query each. The cache honours every
 * revocation the access layer knows of:
 *
 * - control messages invalidate their keys BEFORE anything re-checks access (the control
 *   handler calls `invalidate` first), so a re-check always reads the database;
 * - a read that was in flight when its key was invalidated is not stored (the same
 *   sequence-number guard as access/recent-changes.ts), so an old answer cannot be cached after
 *   the change that voided it;
 * - after a broker reconnect (control messages may have been missed) everything is dropped;
 * - every entry also expires after `ttlMs`, a bound for changes announced nowhere.
 *
 * Notifications are never cached: they are state the client renders, not access.
 *
 * Conversation participants are cached apart, without expiry and through `clear()`: a
 * conversation's two users never change, so no control message can make an entry stale (a
 * deleted account closes its own sockets). Only found conversations are kept (an unknown id
 * costs a read each time instead of memory), at most `maxEntries`, oldest first out.
 */
import { subjectKey, type ControlMessage } from '../protocol/index.ts';
import { RecentChanges } from '../access/recent-changes.ts';
import type { ConversationParticipants, Directory, PostAccessFacts, SessionState, SubscriptionFacts } from './directory.ts';

export interface CacheStats {
  hit(kind: string): void;
  miss(kind: string): void;
}

type Entry = { value: unknown; expiresAt: number; userKey: string | undefined };

export class CachedDirectory implements Directory {
  readonly #inner: Directory;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #stats: CacheStats;
  readonly #entries = new Map<string, Entry>();
  /** Cache keys per user, so "every session of this user" is one lookup. */
  readonly #byUser = new Map<string, Set<string>>();
  readonly #changes = new RecentChanges<true>();
  readonly #participants = new Map<string, ConversationParticipants>();

  constructor(inner: Directory, options: { ttlMs: number; maxEntries?: number; stats?: CacheStats }) {
    this.#inner = inner;
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#stats = options.stats ?? { hit() {}, miss() {} };
  }

  get size(): number {
    return this.#entries.size;
  }

  // Only answers that grant are kept. A refusal is the answer most likely to flip the other
  // way at the user's next click (they subscribe, buy, sign in again), and the announcement of
  // that change trails the commit (the outbox relay publishes it): a cached "no" would refuse
  // them until it arrives. Granting answers are what a reconnect storm asks for again and again,
  // and what control messages take away.

  sessionState(userId: string, sessionId: string | undefined): Promise<SessionState> {
    return this.#cached('session', `session:${userId}:${sessionId ?? ''}`, [`user:${userId}`], userId, () => this.#inner.sessionState(userId, sessionId), (state) => state.exists && !state.sessionRevoked);
  }

  creatorExists(creatorId: string): Promise<boolean> {
    return this.#cached('creator', `creator:${creatorId}`, [`user:${creatorId}`], creatorId, () => this.#inner.creatorExists(creatorId), Boolean);
  }

  findPost(postId: string): Promise<PostAccessFacts | null> {
    const key = subjectKey({ kind: 'post', postId });
    return this.#cached('post', key, [key], undefined, () => this.#inner.findPost(postId), (post) => post !== null);
  }

  findSubscription(subscriberId: string, creatorId: string): Promise<SubscriptionFacts | null> {
    const key = subjectKey({ kind: 'subscription', subscriberId, creatorId });
    return this.#cached('subscription', key, [key, `user:${subscriberId}`], subscriberId, () => this.#inner.findSubscription(subscriberId, creatorId), (subscription) => subscription?.status === 'ACTIVE');
  }

  hasPurchased(userId: string, postId: string): Promise<boolean> {
    const key = subjectKey({ kind: 'purchase', userId, postId });
    return this.#cached('purchase', key, [key, `user:${userId}`], userId, () => this.#inner.hasPurchased(userId, postId), Boolean);
  }

  unreadNotifications(userId: string, limit: number) {
    return this.#inner.unreadNotifications(userId, limit);
  }

  notificationsAfter(userId: string, lastId: string, limit: number) {
    return this.#inner.notificationsAfter(userId, lastId, limit);
  }

  async conversationParticipants(conversationId: string): Promise<ConversationParticipants | null> {
    const known = this.#participants.get(conversationId);
    if (known) {
      this.#stats.hit('conversation');
      return known;
    }
    this.#stats.miss('conversation');
    const found = await this.#inner.conversationParticipants(conversationId);
    if (found) {
      this.#participants.set(conversationId, found);
      while (this.#participants.size > this.#maxEntries) {
        const oldest = this.#participants.keys().next().value;
        if (oldest === undefined) break;
        this.#participants.delete(oldest);
      }
    }
    return found;
  }

  ping(): Promise<void> {
    return this.#inner.ping();
  }

  close(): Promise<void> {
    this.clear();
    this.#participants.clear();
    return this.#inner.close();
  }

  /** Drops whatever `message` may have made stale. Call before anything re-checks access. */
  invalidate(message: ControlMessage): void {
    if (message.type === 'entitlement_changed') {
      const keys = message.subjects.map(subjectKey);
      this.#changes.record(keys, true);
      for (const key of keys) this.#delete(key);
      return;
    }
    // Sessions of the user (and, for a deleted account, everything keyed by them).
    const userKey = `user:${message.userId}`;
    this.#changes.record([userKey], true);
    for (const key of [...(this.#byUser.get(message.userId) ?? [])]) this.#delete(key);
  }

  /** Everything, for when invalidations may have been missed (a broker reconnect). */
  clear(): void {
    this.#entries.clear();
    this.#byUser.clear();
    // Reads in flight started before this: none of them may be stored.
    this.#changes.record(['*'], true);
  }

  async #cached<T>(kind: string, key: string, guards: string[], userId: string | undefined, read: () => Promise<T>, keep: (value: T) => boolean = () => true): Promise<T> {
    const now = Date.now();
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.#stats.hit(kind);
      return entry.value as T;
    }
    this.#stats.miss(kind);
    if (this.#ttlMs <= 0) return read();
    const seq = this.#changes.seq;
    const value = await read();
    // Invalidated while we were reading: the answer may predate the change, keep it uncached.
    if (this.#changes.since(seq, [...guards, key, '*']).length > 0 || !keep(value)) return value;
    this.#store(key, { value, expiresAt: Date.now() + this.#ttlMs, userKey: userId });
    return value;
  }

  #store(key: string, entry: Entry): void {
    this.#delete(key);
    this.#entries.set(key, entry);
    if (entry.userKey !== undefined) {
      let keys = this.#byUser.get(entry.userKey);
      if (!keys) this.#byUser.set(entry.userKey, (keys = new Set()));
      keys.add(key);
    }
    // Bounded: the oldest entries go first (Map keeps insertion order).
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#delete(oldest);
    }
  }

  #delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    if (entry.userKey !== undefined) {
      const keys = this.#byUser.get(entry.userKey);
      keys?.delete(key);
      if (keys?.size === 0) this.#byUser.delete(entry.userKey);
    }
  }
}
