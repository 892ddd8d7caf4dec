/**
 * `post_{postId}`: likes and comments of one post. A public post is open to every signed-in
 * user; a locked one to its author, to subscribers whose subscription grants its tier, and to
 * buyers of the post (see post-access.ts).
 */
import { postAccess } from './post-access.ts';
import { allow, forbidden, notFound, type ChannelPolicy } from './policy.ts';

export const postPolicy: ChannelPolicy = {
  kind: 'post',
  async authorize(principal, postId, { directory, now }) {
    const post = await directory.findPost(postId);
    if (!post) return notFound('no such post');
    if (!post.isLocked || post.authorId === principal.userId) return allow;
    const [subscription, purchased] = await Promise.all([
      directory.findSubscription(principal.userId, post.authorId),
      directory.hasPurchased(principal.userId, postId),
    ]);
    const reason = postAccess({ viewerId: principal.userId, post, subscription, purchased, now: now() });
    return reason ? allow : forbidden('this post is locked: subscribe at the required tier or buy it');
  },
};
