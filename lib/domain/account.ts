/**
 * Ending sessions and accounts. Each change commits first, then the WebSocket nodes are told
 * (lib/realtime.ts), which close the user's sockets with 4003.
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
    .user.update({ where: { id: userId }, data: { sessionsValidAfter: notBefore }, select: { id: true } })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('your account no longer exists');
      throw error;
    });
  await announceUserSessionsRevoked(userId, notBefore);
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
      return posts.map((p) => p.id);
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('your account no longer exists');
      throw error;
    });
  await announceUserDeleted(userId);
  if (postIds.length > 0) await announcePostAccessChange('post_deleted', postIds);
  return { deleted: true, postsDeleted: postIds.length };
}
