/**
 * The only publisher of real-time events. API routes call these functions AFTER their Prisma
 * write committed; every event is checked against the protocol module's schema here, then sent
 * through Redis (REDIS_URL set) or the WebSocket server's POST /publish (unset).
 *
 * A publish failure never fails the request that caused it: the write already happened and
 * clients catch up on their next fetch (the notification bell also polls while its socket is
 * down). Failures are logged and counted (see publishStats), and the functions resolve to
 * false instead of throwing.
 */
import { randomUUID } from 'node:crypto';
import {
  channelName,
  eventDataSchemas,
  MAX_PUBLISH_CHANNELS,
  type EventData,
  type EventType,
  type NotificationPayload,
  type PostSummary,
} from '@/websocket-server/src/protocol/index.ts';
import { db } from './db.ts';
import { toNotificationPayload } from './domain/serialize.ts';
import { env } from './env.ts';
import { log } from './log.ts';
import { httpTransport } from './realtime/http-transport.ts';
import { redisTransport } from './realtime/redis-transport.ts';
import { publishStats } from './realtime/stats.ts';
import type { Transport } from './realtime/transport.ts';

export { publishStats };

let chosen: Transport | undefined;

function transport(): Transport {
  if (!chosen) {
    const e = env();
    chosen = e.REDIS_URL ? redisTransport(e.REDIS_URL, e.REDIS_CHANNEL_PREFIX) : httpTransport(e.WS_PUBLISH_URL, e.WS_PUBLISH_SECRET);
  }
  return chosen;
}

/**
 * Publishes one event to each channel; resolves to the number of channels that accepted it.
 * The same event id goes to every channel, so a client that sees it twice can drop the copy.
 * A fan-out (one feed per subscriber) is one round trip per MAX_PUBLISH_CHANNELS channels.
 */
export async function publish<T extends EventType>(channels: string | readonly string[], type: T, data: EventData<T>): Promise<number> {
  const list = typeof channels === 'string' ? [channels] : channels;
  const stats = publishStats();
  const checked = eventDataSchemas[type].safeParse(data);
  if (!checked.success) {
    stats.invalid += list.length;
    log.error('event does not match the protocol; not published', { type, issues: checked.error.issues.slice(0, 5) });
    return 0;
  }
  const payload = { type, data: checked.data as Record<string, unknown>, id: randomUUID() };
  const t = transport();
  let accepted = 0;
  for (let i = 0; i < list.length; i += MAX_PUBLISH_CHANNELS) {
    const batch = list.slice(i, i + MAX_PUBLISH_CHANNELS);
    try {
      await t.send(batch, payload);
      accepted += batch.length;
      stats.published += batch.length;
    } catch (reason) {
      const error = reason instanceof Error ? reason.message : String(reason);
      const channel = batch.length === 1 ? (batch[0] ?? '') : `${batch[0]} and ${batch.length - 1} more`;
      stats.failed += batch.length;
      stats.lastFailure = { at: new Date().toISOString(), channel, type, error };
      log.warn('publish failed', { transport: t.kind, channel, type, error, failedTotal: stats.failed });
    }
  }
  return accepted;
}

// ---- notifications ---------------------------------------------------------------------

export interface NotificationInput {
  /** Free-form kind shown by the client: LIKE, COMMENT, NEW_SUBSCRIBER, … */
  type: string;
  title: string;
  message: string;
  data?: Record<string, unknown>;
}

/**
 * Stores a Notification row for `userId`, then pushes it on `notifications_{userId}`. Called
 * after the write that caused it has committed, so it never throws: a failure is logged and it
 * resolves to null (the row, if stored, still reaches the user through the API).
 */
export async function sendNotification(userId: string, input: NotificationInput): Promise<NotificationPayload | null> {
  let notification: NotificationPayload;
  try {
    const row = await db().notification.create({
      data: { userId, type: input.type, title: input.title, message: input.message, ...(input.data ? { data: input.data as object } : {}) },
    });
    notification = toNotificationPayload(row);
  } catch (error) {
    log.error('storing a notification failed', { userId, type: input.type, error: (error as Error).message });
    return null;
  }
  await publish(channelName.notifications(userId), 'notification', { notification });
  return notification;
}

export function publishNotificationRead(userId: string, data: EventData<'notification_read'>) {
  return publish(channelName.notifications(userId), 'notification_read', data);
}

export function publishNotificationsCleared(userId: string, data: EventData<'notifications_cleared'>) {
  return publish(channelName.notifications(userId), 'notifications_cleared', data);
}

/** To the creator's own notifications channel: who subscribes is not public. */
export function publishNewSubscription(creatorId: string, data: EventData<'new_subscription'>) {
  return publish(channelName.notifications(creatorId), 'new_subscription', data);
}

// ---- posts -----------------------------------------------------------------------------

export function publishPostLiked(data: EventData<'post_liked'>) {
  return publish(channelName.post(data.postId), 'post_liked', data);
}

export function publishPostUnliked(data: EventData<'post_unliked'>) {
  return publish(channelName.post(data.postId), 'post_unliked', data);
}

/**
 * A new post: its summary (never locked content) on the public creator channel, and a
 * feed_update on the feed of each active subscriber.
 */
export async function publishPostCreated(post: PostSummary, subscriberIds: readonly string[]) {
  await publish(channelName.creator(post.authorId), 'post_created', { post });
  await publish(subscriberIds.map(channelName.feed), 'feed_update', { reason: 'post_created', postId: post.id, post });
}

export async function publishPostDeleted(postId: string, authorId: string, subscriberIds: readonly string[]) {
  await publish([channelName.post(postId), channelName.creator(authorId)], 'post_deleted', { postId, authorId });
  await publish(subscriberIds.map(channelName.feed), 'feed_update', { reason: 'post_deleted', postId });
}

export function publishCommentAdded(data: EventData<'comment_added'>) {
  return publish(channelName.post(data.comment.postId), 'comment_added', data);
}

export function publishCommentDeleted(data: EventData<'comment_deleted'>) {
  return publish(channelName.post(data.postId), 'comment_deleted', data);
}
