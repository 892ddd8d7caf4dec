/**
 * The only publisher of real-time events, through a transactional outbox.
 *
 * An API route writes its change, the notification rows it causes and the events that tell of
 * it in ONE Prisma transaction: the functions here take that transaction (`tx`) and insert
 * OutboxEvent rows in it, after checking every event against the protocol module's schema.
 * Either the change and its events commit together, or neither does; the request returns after
 * the commit, whatever Redis or the WebSocket server are doing. The outbox relay
 * (lib/realtime/outbox-relay.ts, its own process: scripts/outbox-relay.ts) publishes the rows
 * in id order, at least once, each with a stable event id so that clients drop a copy.
 *
 *   await db().$transaction(async (tx) => {
 *     const post = await tx.post.update({ … likesCount: { increment: 1 }, statsVersion: { increment: 1 } });
 *     await publishPostLiked(tx, { postId, userId, likesCount: post.likesCount, version: post.statsVersion });
 *     await sendNotification(tx, post.authorId, { type: 'LIKE', … });
 *   });
 *
 * An event whose data does not match the protocol is a bug here: it is logged, counted as
 * `invalid` (publishStats, GET /api/health) and not enqueued, and the change still commits.
 *
 * Control messages (the `announce…` functions at the end) tell every WebSocket node that a
 * session ended or that access to something changed, so that sockets close (4003) or lose the
 * channels they may no longer read. They go through the outbox too, to the `$control` channel
 * (no history), so a committed change of access is announced at least once.
 *
 * `channelPosition(channel)` reads where a channel's history stands, for pages that render
 * from the database: read it BEFORE the rows, hand it to the client, which subscribes with
 * `since` it and so receives everything committed after the render read.
 */
import {
  channelName,
  CONTROL_CHANNEL,
  controlMessageSchema,
  eventAllowedOn,
  eventDataSchemas,
  isReservedChannel,
  parseChannel,
  type ControlMessage,
  type EntitlementCause,
  type EntitlementSubject,
  type EventData,
  type EventType,
  type NotificationPayload,
  type PostSummary,
  type StreamPosition,
} from '@/websocket-server/src/protocol/index.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { db } from './db.ts';
import { toNotificationPayload } from './domain/serialize.ts';
import { env } from './env.ts';
import { log } from './log.ts';
import { createTransport } from './realtime/create-transport.ts';
import { publishStats } from './realtime/stats.ts';
import type { Transport } from './realtime/transport.ts';

export { publishStats };

/** The transaction a route writes its change in (`db().$transaction(async (tx) => …)`). */
export type Tx = Prisma.TransactionClient;

let chosen: Transport | undefined;

/** This process's way to the WebSocket nodes, for channelPosition (the relay has its own). */
function transport(): Transport {
  if (!chosen) {
    const e = env();
    chosen = createTransport({
      redisClusterNodes: e.REDIS_CLUSTER_NODES,
      redisUrl: e.REDIS_URL,
      redisChannelPrefix: e.REDIS_CHANNEL_PREFIX,
      publishUrl: e.WS_PUBLISH_URL,
      publishSecret: e.WS_PUBLISH_SECRET,
    });
  }
  return chosen;
}

function countInvalid(channel: string, type: string, error: string, issues: unknown): void {
  const stats = publishStats();
  stats.invalid += 1;
  stats.lastFailure = { at: new Date().toISOString(), channel, type, error };
  log.error('event does not match the protocol; not enqueued', { channel, type, error, issues });
}

/**
 * Enqueues one event for each of `channels`, in the caller's transaction: one outbox row, one
 * event id for every channel (a fan-out of any size; the relay sends MAX_PUBLISH_CHANNELS per
 * round trip). Resolves to false, without writing, when the data or a channel name is invalid
 * (logged and counted), and when `channels` is empty. A database error rejects, and so fails
 * the caller's transaction, as any of its writes would.
 */
export async function enqueue<T extends EventType>(tx: Tx, channels: string | readonly string[], type: T, data: EventData<T>): Promise<boolean> {
  const list = [...new Set(typeof channels === 'string' ? [channels] : channels)];
  if (list.length === 0) return false;
  const first = list.length === 1 ? list[0]! : `${list[0]} and ${list.length - 1} more`;
  // `broadcast` is reserved but publishable (operator notices); it takes broadcast events only.
  const badChannel = list.find((name) => (!isReservedChannel(name) && !parseChannel(name).ok) || !eventAllowedOn(name, type));
  if (badChannel !== undefined) {
    countInvalid(first, type, `invalid channel ${JSON.stringify(badChannel)}`, []);
    return false;
  }
  const checked = eventDataSchemas[type].safeParse(data);
  if (!checked.success) {
    countInvalid(first, type, 'data does not match the schema', checked.error.issues.slice(0, 5));
    return false;
  }
  await tx.outboxEvent.create({ data: { channels: list, type, data: checked.data as Prisma.InputJsonValue }, select: { id: true } });
  publishStats().enqueued += 1;
  return true;
}

/**
 * Enqueues one control message on `$control`, in the caller's transaction. Validated against
 * the protocol's schema first: an invalid one is a bug here, counted as `invalid`.
 */
export async function sendControl(tx: Tx, message: ControlMessage): Promise<boolean> {
  const checked = controlMessageSchema.safeParse(message);
  if (!checked.success) {
    countInvalid(CONTROL_CHANNEL, message.type, 'control message does not match the schema', checked.error.issues.slice(0, 5));
    return false;
  }
  await tx.outboxEvent.create({
    data: { channels: [CONTROL_CHANNEL], type: checked.data.type, data: checked.data as Prisma.InputJsonValue },
    select: { id: true },
  });
  publishStats().enqueued += 1;
  return true;
}

// ---- positions ------------------------------------------------------------------------

/**
 * The channel's position now, `{offset, epoch}`: with Redis from the history keys, without it
 * from the server's `GET /position`. Read it BEFORE reading the rows a page renders, so that a
 * client subscribing with `since` it misses nothing committed in between (it may see an event
 * whose change the render already shows: counters carry `version`, items have ids). Resolves
 * to null when neither answers (the client then subscribes without `since`).
 */
export async function channelPosition(channel: string): Promise<StreamPosition | null> {
  try {
    return await transport().position(channel);
  } catch (error) {
    // Every page render and notifications poll asks while the server is down: one line per 10 s.
    const stats = positionFailures;
    stats.count += 1;
    if (Date.now() - stats.loggedAt >= 10_000) {
      log.warn('reading a channel position failed', { channel, error: (error as Error).message, failuresSinceLastLine: stats.count });
      stats.loggedAt = Date.now();
      stats.count = 0;
    }
    return null;
  }
}

const positionFailures = { count: 0, loggedAt: 0 };

// ---- notifications ---------------------------------------------------------------------

export interface NotificationInput {
  /** Free-form kind shown by the client: LIKE, COMMENT, NEW_SUBSCRIBER, … */
  type: string;
  title: string;
  message: string;
  data?: Record<string, unknown>;
}

/**
 * Inserts a Notification row for `userId` and its `notification` event on
 * `notifications_{userId}`, both in the caller's transaction: the user gets the row and the
 * push, or (rolled back) neither.
 */
export async function sendNotification(tx: Tx, userId: string, input: NotificationInput): Promise<NotificationPayload> {
  const row = await tx.notification.create({
    data: { userId, type: input.type, title: input.title, message: input.message, ...(input.data ? { data: input.data as Prisma.InputJsonValue } : {}) },
  });
  const notification = toNotificationPayload(row);
  await enqueue(tx, channelName.notifications(userId), 'notification', { notification });
  return notification;
}

export function publishNotificationRead(tx: Tx, userId: string, data: EventData<'notification_read'>) {
  return enqueue(tx, channelName.notifications(userId), 'notification_read', data);
}

export function publishNotificationsCleared(tx: Tx, userId: string, data: EventData<'notifications_cleared'>) {
  return enqueue(tx, channelName.notifications(userId), 'notifications_cleared', data);
}

/** To the creator's own notifications channel: who subscribes is not public. */
export function publishNewSubscription(tx: Tx, creatorId: string, data: EventData<'new_subscription'>) {
  return enqueue(tx, channelName.notifications(creatorId), 'new_subscription', data);
}

/**
 * To the user's own notifications channel, in the transaction that granted the access: every
 * open tab of theirs showing something locked by it renders again (components/post/UnlockWatcher.tsx).
 */
export function publishAccessGranted(tx: Tx, userId: string, data: EventData<'access_granted'>) {
  return enqueue(tx, channelName.notifications(userId), 'access_granted', data);
}

// ---- posts -----------------------------------------------------------------------------

/** `version`: the post's statsVersion after the change (read from the UPDATE that made it). */
export function publishPostLiked(tx: Tx, data: EventData<'post_liked'>) {
  return enqueue(tx, channelName.post(data.postId), 'post_liked', data);
}

export function publishPostUnliked(tx: Tx, data: EventData<'post_unliked'>) {
  return enqueue(tx, channelName.post(data.postId), 'post_unliked', data);
}

/**
 * A new post: its summary (never locked content) on the public creator channel, and a
 * feed_update on the feed of each active subscriber (one row, one event id for all feeds).
 */
export async function publishPostCreated(tx: Tx, post: PostSummary, subscriberIds: readonly string[]) {
  await enqueue(tx, channelName.creator(post.authorId), 'post_created', { post });
  await enqueue(tx, subscriberIds.map(channelName.feed), 'feed_update', { reason: 'post_created', postId: post.id, post });
}

export async function publishPostDeleted(tx: Tx, postId: string, authorId: string, subscriberIds: readonly string[]) {
  await enqueue(tx, [channelName.post(postId), channelName.creator(authorId)], 'post_deleted', { postId, authorId });
  await enqueue(tx, subscriberIds.map(channelName.feed), 'feed_update', { reason: 'post_deleted', postId });
}

export function publishCommentAdded(tx: Tx, data: EventData<'comment_added'>) {
  return enqueue(tx, channelName.post(data.comment.postId), 'comment_added', data);
}

export function publishCommentDeleted(tx: Tx, data: EventData<'comment_deleted'>) {
  return enqueue(tx, channelName.post(data.postId), 'comment_deleted', data);
}

// ---- direct messages -------------------------------------------------------------------

/**
 * A direct message, on the channels of both participants (one row, one event id for both): the
 * recipient sees it arrive, the sender's other tabs follow. Typing indicators never come through
 * here: the WebSocket server forwards them from the sender's socket, without history.
 */
export function publishDirectMessage(tx: Tx, message: EventData<'message'>['message']) {
  return enqueue(tx, [channelName.messages(message.recipientId), channelName.messages(message.senderId)], 'message', { message });
}

// ---- control messages: sessions and entitlements ---------------------------------------

/**
 * One browser signed out: its sockets (token `sid` = sessionId) close with 4003. Give the
 * transaction that stored the RevokedSession row; without one (`announceSessionRevoked(userId,
 * sessionId)`, after that commit) the message gets a transaction of its own, and a failure to
 * store it is logged and resolves to false instead of throwing.
 */
export function announceSessionRevoked(tx: Tx, userId: string, sessionId: string): Promise<boolean>;
export function announceSessionRevoked(userId: string, sessionId: string): Promise<boolean>;
export async function announceSessionRevoked(...args: [Tx, string, string] | [string, string]): Promise<boolean> {
  if (args.length === 3) return sendControl(args[0], { type: 'session_revoked', userId: args[1], sessionId: args[2] });
  const [userId, sessionId] = args;
  try {
    return await db().$transaction((tx) => sendControl(tx, { type: 'session_revoked', userId, sessionId }));
  } catch (error) {
    log.error('enqueuing a control message failed', { type: 'session_revoked', userId, error: (error as Error).message });
    return false;
  }
}

/** "Sign out everywhere": every socket of the user whose token was issued at or before `notBefore` closes. */
export function announceUserSessionsRevoked(tx: Tx, userId: string, notBefore: Date) {
  return sendControl(tx, { type: 'user_sessions_revoked', userId, notBefore: notBefore.getTime() });
}

/** The account is gone: every socket of the user closes. */
export function announceUserDeleted(tx: Tx, userId: string) {
  return sendControl(tx, { type: 'user_deleted', userId });
}

/** Most subjects one control message may name (the protocol's limit). */
const MAX_SUBJECTS = 100;

/**
 * Access to something changed: every node re-checks the memberships that depend on `subjects`
 * and unsubscribes (reason `forbidden`) the members that lost access. `at` is the change's time
 * the server measures revocation latency from. More than 100 subjects go in several messages;
 * resolves to true when every one was enqueued.
 */
export async function announceEntitlementChange(tx: Tx, cause: EntitlementCause, subjects: readonly EntitlementSubject[], at = new Date()): Promise<boolean> {
  let ok = true;
  for (let i = 0; i < subjects.length; i += MAX_SUBJECTS) {
    const batch = subjects.slice(i, i + MAX_SUBJECTS);
    ok = (await sendControl(tx, { type: 'entitlement_changed', cause, subjects: batch, at: at.getTime() })) && ok;
  }
  return ok;
}

type SubscriptionCause = Extract<EntitlementCause, `subscription_${string}`>;
type PostCause = Extract<EntitlementCause, `post_${string}`>;
type PurchaseCause = Extract<EntitlementCause, `purchase_${string}`>;

export function announceSubscriptionChange(tx: Tx, cause: SubscriptionCause, subscriberId: string, creatorId: string) {
  return announceEntitlementChange(tx, cause, [{ kind: 'subscription', subscriberId, creatorId }]);
}

export function announcePostAccessChange(tx: Tx, cause: PostCause, postIds: string | readonly string[]) {
  const ids = typeof postIds === 'string' ? [postIds] : postIds;
  return announceEntitlementChange(tx, cause, ids.map((postId) => ({ kind: 'post' as const, postId })));
}

/** For the purchase flow (a later issue): a post bought or refunded. */
export function announcePurchaseChange(tx: Tx, cause: PurchaseCause, userId: string, postId: string) {
  return announceEntitlementChange(tx, cause, [{ kind: 'purchase', userId, postId }]);
}
