/**
 * The only publisher of real-time events. API routes call these functions AFTER their Prisma
 * write committed; every event is checked against the protocol module's schema here, then sent
 * through Redis (REDIS_URL set) or the WebSocket server's POST /publish (unset).
 *
 * A publish failure never fails the request that caused it: the write already happened and
 * clients catch up on their next fetch (the notification bell also polls while its socket is
 * down). Failures are logged and counted (see publishStats), and the functions resolve to
 * false instead of throwing.
 *
 * Control messages (the `announce…` functions at the end) tell every WebSocket node that a
 * session ended or that access to something changed, so that sockets close (4003) or lose the
 * channels they may no longer read. They follow the same policy: sent after the commit, never
 * failing the request. A lost control message leaves a socket open that should have closed,
 * until its token expires (minutes); a later issue adds a transactional outbox so that it is
 * sent at least once.
 */
import { randomUUID } from 'node:crypto';
import {
  channelName,
  CONTROL_CHANNEL,
  controlMessageSchema,
  eventDataSchemas,
  MAX_PUBLISH_CHANNELS,
  type ControlMessage,
  type EntitlementCause,
  type EntitlementSubject,
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

// ---- control messages: sessions and entitlements ---------------------------------------

/**
 * Sends one control message on `$control`; resolves to true when the broker took it. Validated
 * against the protocol's schema first: an invalid one is a bug here, counted as `invalid`.
 */
export async function sendControl(message: ControlMessage): Promise<boolean> {
  const stats = publishStats();
  const checked = controlMessageSchema.safeParse(message);
  if (!checked.success) {
    stats.invalid += 1;
    log.error('control message does not match the protocol; not sent', { type: message.type, issues: checked.error.issues.slice(0, 5) });
    return false;
  }
  const t = transport();
  try {
    await t.sendControl(checked.data);
    stats.published += 1;
    return true;
  } catch (reason) {
    const error = reason instanceof Error ? reason.message : String(reason);
    stats.failed += 1;
    stats.lastFailure = { at: new Date().toISOString(), channel: CONTROL_CHANNEL, type: message.type, error };
    log.warn('control message failed', { transport: t.kind, type: message.type, error, failedTotal: stats.failed });
    return false;
  }
}

/** One browser signed out: its sockets (token `sid` = sessionId) close with 4003. */
export function announceSessionRevoked(userId: string, sessionId: string) {
  return sendControl({ type: 'session_revoked', userId, sessionId });
}

/** "Sign out everywhere": every socket of the user whose token was issued at or before `notBefore` closes. */
export function announceUserSessionsRevoked(userId: string, notBefore: Date) {
  return sendControl({ type: 'user_sessions_revoked', userId, notBefore: notBefore.getTime() });
}

/** The account is gone: every socket of the user closes. */
export function announceUserDeleted(userId: string) {
  return sendControl({ type: 'user_deleted', userId });
}

/** Most subjects one control message may name (the protocol's limit). */
const MAX_SUBJECTS = 100;

/**
 * Access to something changed: every node re-checks the memberships that depend on `subjects`
 * and unsubscribes (reason `forbidden`) the members that lost access. `at` is the commit time
 * the server measures revocation latency from. More than 100 subjects go in several messages;
 * resolves to true when every one was taken.
 */
export async function announceEntitlementChange(cause: EntitlementCause, subjects: readonly EntitlementSubject[], at = new Date()): Promise<boolean> {
  let ok = true;
  for (let i = 0; i < subjects.length; i += MAX_SUBJECTS) {
    const batch = subjects.slice(i, i + MAX_SUBJECTS);
    ok = (await sendControl({ type: 'entitlement_changed', cause, subjects: batch, at: at.getTime() })) && ok;
  }
  return ok;
}

type SubscriptionCause = Extract<EntitlementCause, `subscription_${string}`>;
type PostCause = Extract<EntitlementCause, `post_${string}`>;
type PurchaseCause = Extract<EntitlementCause, `purchase_${string}`>;

export function announceSubscriptionChange(cause: SubscriptionCause, subscriberId: string, creatorId: string) {
  return announceEntitlementChange(cause, [{ kind: 'subscription', subscriberId, creatorId }]);
}

export function announcePostAccessChange(cause: PostCause, postIds: string | readonly string[]) {
  const ids = typeof postIds === 'string' ? [postIds] : postIds;
  return announceEntitlementChange(cause, ids.map((postId) => ({ kind: 'post' as const, postId })));
}

/** For the purchase flow (a later issue): a post bought or refunded. */
export function announcePurchaseChange(cause: PurchaseCause, userId: string, postId: string) {
  return announceEntitlementChange(cause, [{ kind: 'purchase', userId, postId }]);
}
