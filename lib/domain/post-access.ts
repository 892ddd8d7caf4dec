/**
 * Who may read a post, decided by the WebSocket server's own rule (`postAccess`), so that the
 * page and the socket never disagree: content the page hides is content whose channel the
 * server refuses.
 */
import { resolvePostAccess, type PostAccessLookups, type PostAccessReason } from '@/websocket-server/src/channels/post-access.ts';
import type { PostAccessFacts } from '@/websocket-server/src/data/directory.ts';
import { db } from '../db.ts';
import { forbidden, notFound } from '../api/errors.ts';

const lookups: PostAccessLookups = {
  findSubscription: (subscriberId, creatorId) =>
    db().subscription.findUnique({
      where: { subscriberId_creatorId: { subscriberId, creatorId } },
      select: { status: true, tier: true, expiresAt: true },
    }),
  hasPurchased: async (userId, postId) =>
    (await db().postPurchase.findUnique({ where: { userId_postId: { userId, postId } }, select: { id: true } })) !== null,
};

export function accessTo(viewerId: string, post: PostAccessFacts): Promise<PostAccessReason | null> {
  return resolvePostAccess(viewerId, post, lookups, new Date());
}

/** The post, if it exists (404) and `viewerId` may read it (403). */
export async function readablePost(viewerId: string, postId: string) {
  const post = await db().post.findUnique({ where: { id: postId } });
  if (!post) throw notFound('no such post');
  const reason = await accessTo(viewerId, post);
  if (!reason) throw forbidden('this post is locked: subscribe at the required tier or buy it');
  return { post, reason };
}
