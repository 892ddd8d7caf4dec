/**
 * Subscribing to a creator. There is no payment here: a subscription is granted at the asked
 * tier for SUBSCRIPTION_DAYS. The creator learns of it on their own notifications channel
 * (`new_subscription` and a stored notification), never on the public creator channel.
 *
 * Every change of a subscription is also announced to the WebSocket nodes (an
 * `entitlement_changed` control message), in the same transaction as the change (the outbox),
 * so that sockets that lose access to the creator's locked posts are unsubscribed from them at
 * once, and the announcement is never lost.
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { notFound, unprocessable } from '../api/errors.ts';
import { announceSubscriptionChange, publishAccessGranted, publishNewSubscription, sendNotification } from '../realtime.ts';
import type { Tier } from './posts.ts';
import { subscriptionGrants } from '@/websocket-server/src/channels/post-access.ts';

const SUBSCRIPTION_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

export async function subscribe(user: SessionUser, creatorId: string, tier: Tier) {
  if (creatorId === user.id) throw unprocessable('you cannot subscribe to yourself');
  const creator = await db().user.findUnique({ where: { id: creatorId }, select: { isCreator: true, name: true } });
  if (!creator?.isCreator) throw notFound('no such creator');
  const now = new Date();
  const existing = await db().subscription.findUnique({
    where: { subscriberId_creatorId: { subscriberId: user.id, creatorId } },
  });
  const alreadyActive = existing !== null && existing.tier === tier && subscriptionGrants(existing, tier, now);
  if (existing && alreadyActive) return { subscription: existing, created: false };

  const expiresAt = new Date(now.getTime() + SUBSCRIPTION_DAYS * DAY_MS);
  // A different tier of a subscription that still grants access is a change of tier (a
  // downgrade takes access away); anything else — a new one, or one renewed after it was
  // cancelled or expired — only grants.
  const tierChanged = existing !== null && existing.tier !== tier && subscriptionGrants(existing, 'BASIC', now);
  const subscription = await db().$transaction(async (tx) => {
    const subscription = await tx.subscription.upsert({
      where: { subscriberId_creatorId: { subscriberId: user.id, creatorId } },
      create: { subscriberId: user.id, creatorId, tier, status: 'ACTIVE', expiresAt },
      update: { tier, status: 'ACTIVE', expiresAt },
    });
    const cause = tierChanged ? 'subscription_tier_changed' : 'subscription_created';
    await announceSubscriptionChange(tx, cause, user.id, creatorId);
    // The subscriber's open locked pages of this creator render again (a downgrade's losses
    // are the server's unsubscribes; what a page still shows locked is re-decided by its render).
    await publishAccessGranted(tx, user.id, { cause, creatorId });
    await publishNewSubscription(tx, creatorId, {
      subscriptionId: subscription.id,
      subscriberId: user.id,
      subscriberName: user.name,
      tier,
    });
    await sendNotification(tx, creatorId, {
      type: 'NEW_SUBSCRIBER',
      title: 'New subscriber',
      message: `${user.name} subscribed to your ${tier} tier`,
      data: { subscriberId: user.id, tier },
    });
    return subscription;
  });
  return { subscription, created: true };
}

/**
 * Cancels at once (no refunds to model). No event is published (cancellations are not news),
 * but the WebSocket nodes are told, and take the creator's locked posts away from the user's
 * sockets.
 */
export async function unsubscribe(user: SessionUser, creatorId: string) {
  await db().$transaction(async (tx) => {
    const { count } = await tx.subscription.updateMany({
      where: { subscriberId: user.id, creatorId, status: 'ACTIVE' },
      data: { status: 'CANCELLED' },
    });
    if (count === 0) throw notFound('no active subscription to this creator');
    await announceSubscriptionChange(tx, 'subscription_cancelled', user.id, creatorId);
  });
  return { cancelled: true };
}

export async function subscriptionOf(userId: string, creatorId: string) {
  const s = await db().subscription.findUnique({
    where: { subscriberId_creatorId: { subscriberId: userId, creatorId } },
    select: { tier: true, status: true, expiresAt: true },
  });
  // Any tier grants at least BASIC, so this is "active and unexpired".
  if (!s || !subscriptionGrants(s, 'BASIC', new Date())) return null;
  return { tier: s.tier, expiresAt: s.expiresAt?.toISOString() ?? null };
}
