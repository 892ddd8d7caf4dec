/**
 * `post_{postId}`: likes and comments of one post. A public post is open to every signed-in
 * user; a locked one to its author, to subscribers whose subscription grants its tier, and to
 * buyers of the post (see post-access.ts).
 */
import { resolvePostAccess } from './post-access.ts';
import { allow, forbidden, notFound, type ChannelPolicy } from './policy.ts';

export const postPolicy: ChannelPolicy = {
  kind: 'post',
  async authorize(principal, postId, { directory, now }) {
    const post = await directory.findPost(postId);
    if (!post) return notFound('no such post');
    const reason = await resolvePostAccess(principal.userId, post, directory, now());
    return reason ? allow : forbidden('this post is locked: subscribe at the required tier or buy it');
  },
};
