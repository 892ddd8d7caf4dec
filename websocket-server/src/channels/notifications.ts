/** `notifications_{userId}`: the user's own notifications, readable by that user only. On
 * subscribe, the unread ones are pushed at once so a client needs no separate fetch. */
import { allow, forbidden, type ChannelPolicy } from './policy.ts';

export const notificationsPolicy: ChannelPolicy = {
  kind: 'notifications',
  async authorize(principal, userId) {
    return principal.userId === userId ? allow : forbidden('notifications are readable by their owner only');
  },
  async initialPush(principal, userId, { directory, unreadNotificationsLimit }) {
    if (principal.userId !== userId) return null;
    const { notifications, count } = await directory.unreadNotifications(userId, unreadNotificationsLimit);
    return { type: 'unread_notifications', data: { notifications, count } };
  },
  // History did not cover the client's position (Redis lost it, or it expired): the database
  // still has every notification, so none is ever lost.
  async recoveryPush(principal, userId, { directory, unreadNotificationsLimit }, lastNotificationId) {
    if (principal.userId !== userId) return null;
    const { notifications, unreadCount } = await directory.notificationsAfter(userId, lastNotificationId, unreadNotificationsLimit);
    return { type: 'notifications_recovered', data: { notifications, unreadCount } };
  },
};
