/**
 * The notifications API behind the bell. Reads page newest first with an id cursor; every
 * change is pushed to the user's own channel so their other tabs follow.
 */
import { db } from '../db.ts';
import { notFound } from '../api/errors.ts';
import { publishNotificationRead, publishNotificationsCleared } from '../realtime.ts';
import { toNotificationPayload } from './serialize.ts';

export const NOTIFICATIONS_PAGE = { default: 20, max: 100 } as const;

export function unreadCount(userId: string): Promise<number> {
  return db().notification.count({ where: { userId, isRead: false } });
}

export async function listNotifications(userId: string, opts: { cursor?: string; limit: number }) {
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
  };
}

/** Is `cursor` one of the user's notifications? (Prisma would throw on a foreign cursor id.) */
export async function isOwnNotification(userId: string, id: string): Promise<boolean> {
  return (await db().notification.count({ where: { id, userId } })) > 0;
}

export async function markRead(userId: string, notificationId: string) {
  const { count } = await db().notification.updateMany({ where: { id: notificationId, userId, isRead: false }, data: { isRead: true } });
  if (count === 0 && !(await isOwnNotification(userId, notificationId))) throw notFound('no such notification');
  const unread = await unreadCount(userId);
  if (count > 0) await publishNotificationRead(userId, { notificationId, unreadCount: unread });
  return { notificationId, unreadCount: unread };
}

export async function markAllRead(userId: string) {
  const { count } = await db().notification.updateMany({ where: { userId, isRead: false }, data: { isRead: true } });
  const unread = await unreadCount(userId);
  if (count > 0) await publishNotificationRead(userId, { notificationId: null, unreadCount: unread });
  return { marked: count, unreadCount: unread };
}

export async function clearNotifications(userId: string) {
  const { count } = await db().notification.deleteMany({ where: { userId } });
  const unread = await unreadCount(userId);
  await publishNotificationsCleared(userId, { unreadCount: unread });
  return { deleted: count, unreadCount: unread };
}
