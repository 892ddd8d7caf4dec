import { db } from '../db.ts';

/** Ids of the users whose subscription to `creatorId` is active and unexpired now. */
export async function activeSubscriberIds(creatorId: string): Promise<string[]> {
  const rows = await db().subscription.findMany({
    where: { creatorId, status: 'ACTIVE', OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
    select: { subscriberId: true },
  });
  return rows.map((r) => r.subscriberId);
}

/** Ids of the creators `subscriberId` actively subscribes to. */
export async function subscribedCreatorIds(subscriberId: string): Promise<string[]> {
  const rows = await db().subscription.findMany({
    where: { subscriberId, status: 'ACTIVE', OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
    select: { creatorId: true },
  });
  return rows.map((r) => r.creatorId);
}
