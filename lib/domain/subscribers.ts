import { db } from '../db.ts';
import type { Tx } from '../realtime.ts';

/** Prisma filter for subscriptions that grant access now: ACTIVE and not expired (see
 * `subscriptionGrants` in websocket-server/src/channels/post-access.ts for the same rule). */
export function activeSubscriptionWhere(now = new Date()) {
  return { status: 'ACTIVE' as const, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] };
}

/** Ids of the users whose subscription to `creatorId` is active and unexpired now. */
export async function activeSubscriberIds(creatorId: string, tx: Tx = db()): Promise<string[]> {
  const rows = await tx.subscription.findMany({
    where: { creatorId, ...activeSubscriptionWhere() },
    select: { subscriberId: true },
  });
  return rows.map((r) => r.subscriberId);
}

/** Ids of the creators `subscriberId` actively subscribes to. */
export async function subscribedCreatorIds(subscriberId: string): Promise<string[]> {
  const rows = await db().subscription.findMany({
    where: { subscriberId, ...activeSubscriptionWhere() },
    select: { creatorId: true },
  });
  return rows.map((r) => r.creatorId);
}
