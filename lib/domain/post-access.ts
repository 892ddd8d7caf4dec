/**
 * Who may read a post, decided by the WebSocket server's own rule (`postAccess`), so that the
 * page and the socket never disagree: content the page hides is content whose channel the
 * server refuses.
 */
import { postAccess, type PostAccessReason } from '@/websocket-server/src/channels/post-access.ts';
import { db } from '../db.ts';
import { forbidden, notFound } from '../api/errors.ts';

type PostFacts = { id: string; authorId: string; isLocked: boolean; requiredTier: 'BASIC' | 'PREMIUM' | 'VIP' };

export async function accessTo(viewerId: string, post: PostFacts): Promise<PostAccessReason | null> {
  // Public posts and the author's own need no lookups.
  if (!post.isLocked || post.authorId === viewerId) {
    return postAccess({ viewerId, post, subscription: null, purchased: false, now: new Date() });
  }
  const [subscription, purchase] = await Promise.all([
    db().subscription.findUnique({
      where: { subscriberId_creatorId: { subscriberId: viewerId, creatorId: post.authorId } },
      select: { status: true, tier: true, expiresAt: true },
    }),
    db().postPurchase.findUnique({ where: { userId_postId: { userId: viewerId, postId: post.id } }, select: { id: true } }),
  ]);
  return postAccess({ viewerId, post, subscription, purchased: purchase !== null, now: new Date() });
}

/** The post, if it exists (404) and `viewerId` may read it (403). */
export async function readablePost(viewerId: string, postId: string) {
  const post = await db().post.findUnique({ where: { id: postId } });
  if (!post) throw notFound('no such post');
  const reason = await accessTo(viewerId, post);
  if (!reason) throw forbidden('this post is locked: subscribe at the required tier or buy it');
  return { post, reason };
}
