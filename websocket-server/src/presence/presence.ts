/**
 * Presence: who is here, on every node, kept as centrifuge's `presence_redis.go` keeps it. Per
 * channel a sorted set of client ids scored by their expiry (ms) and a hash client id → user id.
 * Each node re-adds its own entries every `ttlMs / 3` (presence/tracker.ts); readers drop the
 * expired ones first. Nobody has to remove what a dead node left: its entries stop counting
 * `ttlMs` after its last refresh (PRESENCE_TTL_MS).
 *
 * Two channel kinds have presence state, pushed on the channel itself:
 *
 *   creator_{id}  the creator's own sockets (one client id per node where they have one):
 *                 `creator_presence {creatorId, online}`
 *   post_{id}     the members of the post channel (one client id per node and user):
 *                 `viewers {postId, count}`, count = distinct users
 *
 * Presence is state, not history: announcements travel as plain pushes without an offset, so
 * neither the node (history/continuity.ts) nor a client (rule 5 of the guide) treats them as a
 * gap, and they never crowd real events out of a channel's history window. A client that missed
 * one gets the current state again with its next subscribe (the channel's `statePush`).
 *
 * Announcing is one atomic step of the store (`announce`): it drops expired entries, derives the
 * state, compares it with the last state announced for the channel by any node, and publishes
 * only a change, and no sooner than `minIntervalMs` after the channel's previous announcement
 * (viewers: 1 s); otherwise it says how long to wait. So any node may call it at any time, and
 * subscribers still see each state once, at most once a second for viewers.
 */
import { parseChannel, type EventData } from '../protocol/index.ts';

/** One client's entry on a channel: who it is, for counting distinct users. */
export interface PresenceEntry {
  readonly clientId: string;
  readonly userId: string;
}

/** What `announce` did: published the new state, found it unchanged, or must wait `retryInMs`. */
export type AnnounceResult =
  | { outcome: 'published'; value: string }
  | { outcome: 'unchanged'; value: string }
  | { outcome: 'too_soon'; value: string; retryInMs: number };

/** Announcements the store hands over instead of publishing them on pub/sub (memory store). */
export type AnnouncementHandler = (channel: string, payload: string) => void;

export interface Presence {
  readonly kind: 'redis' | 'memory';
  /** How long an entry counts after it was last added (PRESENCE_TTL_MS). */
  readonly ttlMs: number;
  /** Adds the entries, or refreshes them: each counts until now + ttlMs. */
  add(channel: string, entries: readonly PresenceEntry[]): Promise<void>;
  remove(channel: string, clientIds: readonly string[]): Promise<void>;
  /** Distinct users with an unexpired entry on `channel` (expired entries are dropped first). */
  count(channel: string): Promise<number>;
  /**
   * Publishes the channel's state (presenceEvent) if it differs from the last one announced and
   * `minIntervalMs` has passed since that one. Only for channels with presence (presenceKindOf).
   */
  announce(channel: string, minIntervalMs: number): Promise<AnnounceResult>;
  /**
   * The Redis store PUBLISHes announcements on the channel's pub/sub channel, and every node
   * subscribed to it (this one included) delivers them through its broker; it never calls this.
   * The memory store (one process) hands them to this handler; the server publishes them through
   * its broker as transient events (no offset, kept nowhere).
   */
  onAnnouncement(handler: AnnouncementHandler): void;
  /** Idempotent. */
  close(): Promise<void>;
}

export type PresenceKind = 'creator' | 'post';

export type PresenceEvent =
  | { type: 'creator_presence'; data: EventData<'creator_presence'> }
  | { type: 'viewers'; data: EventData<'viewers'> };

/** The kind of a channel that has presence state, or null. */
export function presenceKindOf(channel: string): { kind: PresenceKind; id: string } | null {
  const parsed = parseChannel(channel);
  if (!parsed.ok) return null;
  const { kind, id } = parsed.channel;
  return kind === 'creator' || kind === 'post' ? { kind, id } : null;
}

/** The state as the event subscribers receive. */
export function presenceEvent(channel: string, count: number): PresenceEvent | null {
  const of = presenceKindOf(channel);
  if (!of) return null;
  return of.kind === 'creator'
    ? { type: 'creator_presence', data: { creatorId: of.id, online: count > 0 } }
    : { type: 'viewers', data: { postId: of.id, count } };
}

/**
 * The announcement's JSON around its value, so a Lua script that computes the value can build
 * it: `head + value + tail` is exactly `JSON.stringify({type, data})` of presenceEvent.
 * `value`: 'online' (true/false from count > 0) or 'count'. The empty state ('false', '0') is
 * what a channel nobody announced yet is taken to be: announcing it publishes nothing.
 */
export function announcementParts(channel: string): { head: string; tail: string; value: 'online' | 'count' } {
  const of = presenceKindOf(channel);
  if (!of) throw new Error(`channel ${channel} has no presence state`);
  return of.kind === 'creator'
    ? { head: `{"type":"creator_presence","data":{"creatorId":${JSON.stringify(of.id)},"online":`, tail: '}}', value: 'online' }
    : { head: `{"type":"viewers","data":{"postId":${JSON.stringify(of.id)},"count":`, tail: '}}', value: 'count' };
}

/** The state's value as announced and compared: 'true'/'false' or the count. */
export function stateValue(kind: 'online' | 'count', count: number): string {
  return kind === 'online' ? String(count > 0) : String(count);
}

export const EMPTY_VALUES: ReadonlySet<string> = new Set(['false', '0']);

/**
 * How long the last announced state is remembered after the channel's last announce (ms). Every
 * sweep of a watched channel announces (and so renews it); a channel nobody watches forgets it,
 * and its next non-empty state is announced again.
 */
export const STATE_TTL_MS = 10 * 60_000;

/** Redis keys of a channel's presence, all in the channel's hash slot (`{channel}`). */
export function presenceKeys(prefix: string, channel: string): { clients: string; users: string; state: string } {
  const base = `${prefix}presence:{${channel}}`;
  return { clients: `${base}:clients`, users: `${base}:users`, state: `${base}:state` };
}
