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
};
