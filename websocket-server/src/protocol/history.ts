/**
 * Channel history and positions. Every event published through the app's helpers, the outbox
 * relay or `POST /publish` gets, atomically with the publish, the channel's next `offset`
 * (1, 2, 3, … per channel) and the channel's `epoch` (a string that changes whenever the
 * history was lost: Redis restarted without persistence, the keys expired, or an in-memory
 * broker restarted). A client that knows its position `{offset, epoch}` subscribes with
 * `since` and receives every event after it, in order, before any live one; if the history no
 * longer covers it, the reply says `recovered: false` and the client reloads its state.
 *
 * A plain `PUBLISH ws:<channel> …` still works: such events carry no offset and are not kept.
 */
import type { ChannelKind } from './channels.ts';

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface HistoryPolicy {
  /** Events kept per channel (the stream is capped at this length). */
  size: number;
  /** Seconds the history lives after the channel's last publish. */
  ttlSeconds: number;
}

/**
 * Per kind: a user's notifications matter for days (the bell falls back to the database past
 * that), likes and comments of a post for minutes (a reload shows the counters anyway).
 */
export const HISTORY_POLICIES: Readonly<Record<ChannelKind, HistoryPolicy>> = {
  notifications: { size: 500, ttlSeconds: 7 * 24 * 3600 },
  feed: { size: 200, ttlSeconds: 24 * 3600 },
  creator: { size: 200, ttlSeconds: 24 * 3600 },
  post: { size: 200, ttlSeconds: 15 * 60 },
  // Like notifications: the messages are in the database too (the thread refetches on
  // `recovered: false`). Typing indicators are published without history and never kept.
  messages: { size: 500, ttlSeconds: 7 * 24 * 3600 },
};

/** Most events one recovery replays; a client further behind reloads its state instead. */
export const MAX_RECOVERY_EVENTS = 500;
