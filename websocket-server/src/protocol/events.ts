/**
 * Events pushed to clients, with the schema of each event's `data`. Publishers (the Next.js
 * API routes, or any backend through Redis or `POST /publish`) send `{type, data}`; the server
 * checks `data` against the schema here before fanning it out, so a subscriber never receives
 * a shape this file does not describe. Schemas are loose objects: extra fields pass through, so
 * a publisher can add a field before every client knows it.
 */
import { z } from 'zod';

const id = z.string().min(1).max(64);
const isoDate = z.string().min(1).max(40);
const count = z.number().int().nonnegative();

export const notificationSchema = z.looseObject({
  id,
  type: z.string().min(1).max(64),
  title: z.string().max(200),
  message: z.string().max(2000),
  isRead: z.boolean(),
  createdAt: isoDate,
  data: z.unknown().optional(),
});
export type NotificationPayload = z.infer<typeof notificationSchema>;

/** A stored notification (a database row) as it travels: dates as ISO strings, no null data. */
export function toNotificationPayload(row: {
  id: string;
  type: string;
  title: string;
  message: string;
  isRead: boolean;
  createdAt: Date;
  data?: unknown;
}): NotificationPayload {
  return {
    id: row.id,
    type: row.type,
    title: row.title,
    message: row.message,
    isRead: row.isRead,
    createdAt: row.createdAt.toISOString(),
    ...(row.data === null || row.data === undefined ? {} : { data: row.data }),
  };
}

/** What public channels may say about a post: never the content of a locked one. */
export const postSummarySchema = z.looseObject({
  id,
  authorId: id,
  title: z.string().max(300),
  isLocked: z.boolean(),
  requiredTier: z.string().max(32).optional(),
  excerpt: z.string().max(500).optional(),
  createdAt: isoDate,
});
export type PostSummary = z.infer<typeof postSummarySchema>;

export const commentSchema = z.looseObject({
  id,
  postId: id,
  authorId: id,
  authorName: z.string().max(200),
  content: z.string().max(5000),
  createdAt: isoDate,
});
export type CommentPayload = z.infer<typeof commentSchema>;

/** Longest direct message body (characters); the database column has the same bound. */
export const MAX_MESSAGE_LENGTH = 2000;

/** A direct message as the API answers it and `messages_` pushes it (lib/domain/messages.ts). */
export const directMessageSchema = z.looseObject({
  id,
  conversationId: id,
  senderId: id,
  senderName: z.string().max(200),
  recipientId: id,
  body: z.string().min(1).max(MAX_MESSAGE_LENGTH),
  createdAt: isoDate,
  readAt: isoDate.nullable(),
});
export type DirectMessagePayload = z.infer<typeof directMessageSchema>;

/** Longest operator broadcast (characters): a banner line, not an article. */
export const MAX_BROADCAST_LENGTH = 500;
export const BROADCAST_LEVELS = ['info', 'warning', 'critical'] as const;
export type BroadcastLevel = (typeof BROADCAST_LEVELS)[number];

export const eventDataSchemas = {
  notification: z.looseObject({ notification: notificationSchema }),
  /** notificationId null means "all of them" (mark all read). */
  notification_read: z.looseObject({ notificationId: id.nullable(), unreadCount: count }),
  notifications_cleared: z.looseObject({ unreadCount: count }),
  unread_notifications: z.looseObject({ notifications: z.array(notificationSchema), count }),
  /** After a failed recovery of notifications_: what was created after the client's newest
   * notification (newest first) and the unread count, read in one database snapshot. */
  notifications_recovered: z.looseObject({ notifications: z.array(notificationSchema), unreadCount: count }),
  /**
   * `version` (post_liked, post_unliked, comment_added, comment_deleted): the post's statsVersion
   * after the change, incremented with every change of its counters. A client keeps the counters
   * of the highest version it has seen, so counters never go backwards whatever the order of
   * arrival (a replay, a duplicate, the answer of its own request racing an event).
   */
  post_liked: z.looseObject({ postId: id, userId: id, likesCount: count, version: count.optional() }),
  post_unliked: z.looseObject({ postId: id, userId: id, likesCount: count, version: count.optional() }),
  post_created: z.looseObject({ post: postSummarySchema }),
  post_deleted: z.looseObject({ postId: id, authorId: id }),
  comment_added: z.looseObject({ comment: commentSchema, commentsCount: count, version: count.optional() }),
  comment_deleted: z.looseObject({ commentId: id, postId: id, commentsCount: count, version: count.optional() }),
  /**
   * Presence (websocket-server/src/presence/), sent by the server itself and never kept in
   * history (no offset): distinct users subscribed to `post_{postId}` on every node, at most once
   * a second per post, and after each subscribe to the channel.
   */
  viewers: z.looseObject({ postId: id, count }),
  creator_updated: z.looseObject({ creatorId: id, name: z.string().max(200).optional(), bio: z.string().max(2000).optional() }),
  /** Presence, like `viewers`: whether the creator has an open socket on any node, on `creator_{creatorId}`
   * when it changes and after each subscribe to the channel. */
  creator_presence: z.looseObject({ creatorId: id, online: z.boolean() }),
  new_subscription: z.looseObject({
    subscriptionId: id,
    subscriberId: id,
    subscriberName: z.string().max(200),
    tier: z.string().max(32),
  }),
  feed_update: z.looseObject({
    reason: z.enum(['post_created', 'post_deleted']),
    postId: id,
    post: postSummarySchema.optional(),
  }),
  /**
   * On the user's own `notifications_{userId}`: the user gained access, by buying `postId` or by
   * subscribing to (or upgrading at) `creatorId`. Losing access needs no event (the server ends
   * the subscriptions that depended on it), but gaining it does: a page that was refused holds
   * no subscription the server could re-grant, so it must be told to render again.
   */
  access_granted: z.looseObject({
    cause: z.enum(['purchase_granted', 'subscription_created', 'subscription_tier_changed']),
    postId: id.optional(),
    creatorId: id.optional(),
  }),
  /** A direct message, on the channels of both participants (`messages_{userId}`). */
  message: z.looseObject({ message: directMessageSchema }),
  /**
   * A participant started (`typing: true`) or stopped typing, on the other participant's
   * channel only. Sent by the server from a client's `typing` frame, never kept in history; a
   * client clears the indicator after a few seconds without another `typing: true`.
   */
  typing: z.looseObject({ conversationId: id, userId: id, typing: z.boolean() }),
  /**
   * A site-wide notice from an operator (maintenance, incident), on the reserved channel
   * `broadcast` only (see channels.ts and broadcast.ts): every authenticated socket receives it
   * without subscribing. The app shows it as a banner; `critical` is announced as an alert.
   */
  broadcast: z.looseObject({ message: z.string().trim().min(1).max(MAX_BROADCAST_LENGTH), level: z.enum(BROADCAST_LEVELS) }),
} as const;

export type EventType = keyof typeof eventDataSchemas;
export const EVENT_TYPES = Object.keys(eventDataSchemas) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof eventDataSchemas)[T]>;

export type BroadcastPayload = EventData<'broadcast'>;

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && Object.hasOwn(eventDataSchemas, value);
}
