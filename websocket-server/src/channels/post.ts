/**
 * `post_{postId}`: likes and comments of one post. A public post is open to every signed-in
 * user; a locked one to its author, to subscribers whose subscription grants its tier, and to
 * buyers of the post (see post-access.ts). Its members are counted (presence/): `viewers`.
 */
import { channelName, type EntitlementSubject } from '../protocol/index.ts';
import { resolvePostGrant } from './post-access.ts';
import { allowWhile, forbidden, notFound, type ChannelPolicy } from './policy.ts';

export const postPolicy: ChannelPolicy = {
  kind: 'post',
  async authorize(principal, postId, { directory, now }) {
    const post = await directory.findPost(postId);
    if (!post) return notFound('no such post');
    const grant = await resolvePostGrant(principal.userId, post, directory, now());
    if (!grant) return forbidden('this post is locked: subscribe at the required tier or buy it');
    // Any post can be locked, re-tiered or deleted; a locked one's reader also depends on their
    // subscription to the author and their purchase of the post.
    const dependsOn: EntitlementSubject[] = [{ kind: 'post', postId }];
    if (post.isLocked && post.authorId !== principal.userId) {
      dependsOn.push({ kind: 'subscription', subscriberId: principal.userId, creatorId: post.authorId });
      dependsOn.push({ kind: 'purchase', userId: principal.userId, postId });
    }
    return allowWhile(dependsOn, grant.validUntil);
  },
  // How many people view the post now, on every node (presence/): `viewers`.
  async statePush(_principal, postId, { presence }) {
    return (await presence?.state(channelName.post(postId))) ?? null;
  },
};
