/**
 * Channel ids worth checking for one user, found in the database when DATABASE_URL is at hand:
 * someone else, a creator, a post everyone may read, and a locked post this user may not read
 * (decided by the server's own rule, `postAccess`, so the expectation cannot drift from it).
 * Ids given on the command line win.
 */
import { postAccess } from '../../websocket-server/src/channels/post-access.ts';
import type { Tier } from '../../websocket-server/src/data/directory.ts';
import { withDatabase } from './identity.ts';

export interface Targets {
  otherUserId: string;
  creatorId: string | undefined;
  publicPostId: string | undefined;
  forbiddenPostId: string | undefined;
  /** Where the ids came from, for the report. */
  source: string;
}

export interface GivenTargets {
  otherUserId: string | undefined;
  creatorId: string | undefined;
  publicPostId: string | undefined;
  forbiddenPostId: string | undefined;
}

/** Without a database, "someone else" is an id nobody has: notifications_ and feed_ channels
 * belong to their owner only, whoever the id names. */
const MADE_UP_USER_ID = 'test-client-someone-else';

type LockedPostRow = {
  id: string;
  authorId: string;
  requiredTier: Tier;
  status: 'ACTIVE' | 'CANCELLED' | 'EXPIRED' | null;
  tier: Tier | null;
  expiresAt: Date | null;
  purchased: boolean;
};

export async function findTargets(userId: string, given: GivenTargets, databaseUrl: string | undefined): Promise<Targets> {
  if (!databaseUrl) {
    return { ...given, otherUserId: given.otherUserId ?? MADE_UP_USER_ID, source: 'command line (no DATABASE_URL)' };
  }
  return withDatabase(databaseUrl, async (db) => {
    const first = async (sql: string): Promise<string | undefined> => (await db.query<{ id: string }>(sql, [userId])).rows[0]?.id;
    const otherUserId = given.otherUserId ?? (await first('SELECT id FROM "User" WHERE id <> $1 ORDER BY "createdAt" LIMIT 1')) ?? MADE_UP_USER_ID;
    // Prefer other people's: "any signed-in user may read it" is the point of these checks.
    const creatorId = given.creatorId ?? (await first('SELECT id FROM "User" WHERE "isCreator" ORDER BY (id = $1), "createdAt" LIMIT 1'));
    const publicPostId = given.publicPostId ?? (await first('SELECT id FROM "Post" WHERE NOT "isLocked" ORDER BY ("authorId" = $1), "createdAt" LIMIT 1'));
    let forbiddenPostId = given.forbiddenPostId;
    if (!forbiddenPostId) {
      const { rows } = await db.query<LockedPostRow>(
        `SELECT p.id, p."authorId", p."requiredTier", s.status, s.tier, s."expiresAt", (pp.id IS NOT NULL) AS purchased
           FROM "Post" p
           LEFT JOIN "Subscription" s ON s."creatorId" = p."authorId" AND s."subscriberId" = $1
           LEFT JOIN "PostPurchase" pp ON pp."postId" = p.id AND pp."userId" = $1
          WHERE p."isLocked" AND p."authorId" <> $1
          ORDER BY p."createdAt" LIMIT 200`,
        [userId],
      );
      const now = new Date();
      forbiddenPostId = rows.find(
        (row) =>
          postAccess({
            viewerId: userId,
            post: { id: row.id, authorId: row.authorId, isLocked: true, requiredTier: row.requiredTier },
            subscription: row.status && row.tier ? { status: row.status, tier: row.tier, expiresAt: row.expiresAt } : null,
            purchased: row.purchased,
            now,
          }) === null,
      )?.id;
    }
    return { otherUserId, creatorId, publicPostId, forbiddenPostId, source: 'database' };
  });
}
