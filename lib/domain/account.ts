/**
 * Ending sessions and accounts. Each change and its control messages commit together (the
 * outbox, lib/realtime.ts); the relay then tells the WebSocket nodes, which close the user's
 * sockets with 4003.
 */
import { db } from '../db.ts';
import { notFound } from '../api/errors.ts';
import { announcePostAccessChange, announceUserDeleted, announceUserSessionsRevoked } from '../realtime.ts';
import { isRecordNotFound } from './prisma-errors.ts';

/**
 * "Sign out everywhere": every session token of the user issued up to now stops counting, in
 * the app and on the WebSocket server (`issuedBeforeCutoff`). The instant announced is the one
 * stored (PostgreSQL keeps milliseconds, as a JS Date does).
 */
export async function signOutEverywhere(userId: string): Promise<{ notBefore: Date }> {
  const notBefore = new Date();
  await db()
    .$transaction(async (tx) => {
      await tx.user.update({ where: { id: userId }, data: { sessionsValidAfter: notBefore }, select: { id: true } });
      await announceUserSessionsRevoked(tx, userId, notBefore);
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('your account no longer exists');
      throw error;
    });
  return { notBefore };
}

/**
 * Deletes the account; its posts, comments, likes, subscriptions (both ways), purchases,
 * notifications and signed-out sessions go with it (ON DELETE CASCADE). The user's sockets
 * close; members of the deleted posts' channels lose them like for any deleted post.
 */
export async function deleteAccount(userId: string): Promise<{ deleted: true; postsDeleted: number }> {
  const postIds = await db()
    .$transaction(async (tx) => {
      const posts = await tx.post.findMany({ where: { authorId: userId }, select: { id: true } });
      await tx.user.delete({ where: { id: userId }, select: { id: true } });
      const postIds = posts.map((p) => p.id);
      await announceUserDeleted(tx, userId);
      if (postIds.length > 0) await announcePostAccessChange(tx, 'post_deleted', postIds);
      return postIds;
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('your account no longer exists');
      throw error;
    });
  return { deleted: true, postsDeleted: postIds.length };
}
