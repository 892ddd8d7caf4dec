/**
 * The notifications API behind the bell. Reads page newest first with an id cursor; every
 * change is pushed to the user's own channel so their other tabs follow, through the outbox in
 * the change's own transaction.
 */
import { channelName, type StreamPosition } from '@/websocket-server/src/protocol/index.ts';
import { db } from '../db.ts';
import { notFound } from '../api/errors.ts';
import { channelPosition, publishNotificationRead, publishNotificationsCleared, type Tx } from '../realtime.ts';
import { toNotificationPayload } from './serialize.ts';

export const NOTIFICATIONS_PAGE = { default: 20, max: 100 } as const;

export function unreadCount(userId: string, tx: Tx = db()): Promise<number> {
  return tx.notification.count({ where: { userId, isRead: false } });
}

/**
 * A page of notifications. The first page (no cursor) also carries `position`, the position of
 * `notifications_{userId}` read BEFORE the rows: a client that subscribes with `since` it
 * receives every notification event committed after this read, so none falls between the page
 * and the subscription (null when the position could not be read).
 */
export async function listNotifications(userId: string, opts: { cursor?: string | undefined; limit: number }) {
  const position: StreamPosition | null | undefined = opts.cursor ? undefined : await channelPosition(channelName.notifications(userId));
  const rows = await db().notification.findMany({
    where: { userId },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    // One extra row tells whether another page exists without a second query.
    take: opts.limit + 1,
    ...(opts.cursor ? { cursor: { id: opts.cursor }, skip: 1 } : {}),
  });
  const page = rows.slice(0, opts.limit);
  return {
    notifications: page.map(toNotificationPayload),
    nextCursor: rows.length > opts.limit ? (page.at(-1)?.id ?? null) : null,
    unreadCount: await unreadCount(userId),
    ...(position === undefined ? {} : { position }),
  };
}

/** Is `cursor` one of the user's notifications? (Prisma would throw on a foreign cursor id.) */
export async function isOwnNotification(userId: string, id: string, tx: Tx = db()): Promise<boolean> {
  return (await tx.notification.count({ where: { id, userId } })) > 0;
}

export async function markRead(userId: string, notificationId: string) {
  const unread = await db().$transaction(async (tx) => {
    const { count } = await tx.notification.updateMany({ where: { id: notificationId, userId, isRead: false }, data: { isRead: true } });
    if (count === 0 && !(await isOwnNotification(userId, notificationId, tx))) throw notFound('no such notification');
    const unread = await unreadCount(userId, tx);
    if (count > 0) await publishNotificationRead(tx, userId, { notificationId, unreadCount: unread });
    return unread;
  });
  return { notificationId, unreadCount: unread };
}

export async function markAllRead(userId: string) {
  return db().$transaction(async (tx) => {
    const { count } = await tx.notification.updateMany({ where: { userId, isRead: false }, data: { isRead: true } });
    const unread = await unreadCount(userId, tx);
    if (count > 0) await publishNotificationRead(tx, userId, { notificationId: null, unreadCount: unread });
    return { marked: count, unreadCount: unread };
  });
}

export async function clearNotifications(userId: string) {
  return db().$transaction(async (tx) => {
    const { count } = await tx.notification.deleteMany({ where: { userId } });
    const unread = await unreadCount(userId, tx);
    await publishNotificationsCleared(tx, userId, { unreadCount: unread });
    return { deleted: count, unreadCount: unread };
  });
}
