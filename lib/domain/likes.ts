/**
 * Likes. The Like row, the post's denormalised `likesCount` (with its `statsVersion`), the
 * `post_liked` event and the author's notification are written in one transaction: all of them
 * commit, or none. Only a change publishes (liking twice is a no-op).
 *
 * The counter UPDATE comes before the outbox rows: it takes the post's row lock, so the events
 * of one post are enqueued in the order their versions were assigned.
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { publishPostLiked, publishPostUnliked, sendNotification } from '../realtime.ts';
import { readablePost } from './post-access.ts';

const counters = { likesCount: true, statsVersion: true } as const;

export async function likePost(user: SessionUser, postId: string) {
  const { post } = await readablePost(user.id, postId);
  const result = await db().$transaction(async (tx) => {
    const { count } = await tx.like.createMany({ data: [{ userId: user.id, postId }], skipDuplicates: true });
    if (count === 0) return { changed: false, ...(await tx.post.findUniqueOrThrow({ where: { id: postId }, select: counters })) };
    const after = await tx.post.update({
      where: { id: postId },
      data: { likesCount: { increment: 1 }, statsVersion: { increment: 1 } },
      select: counters,
    });
    await publishPostLiked(tx, { postId, userId: user.id, likesCount: after.likesCount, version: after.statsVersion });
    if (post.authorId !== user.id) {
      await sendNotification(tx, post.authorId, {
        type: 'LIKE',
        title: 'New like',
        message: `${user.name} liked "${post.title}"`,
        data: { postId, userId: user.id },
      });
    }
    return { changed: true, ...after };
  });
  return { liked: true, likesCount: result.likesCount, version: result.statsVersion };
}

export async function unlikePost(user: SessionUser, postId: string) {
  await readablePost(user.id, postId);
  const result = await db().$transaction(async (tx) => {
    const { count } = await tx.like.deleteMany({ where: { userId: user.id, postId } });
    if (count === 0) return tx.post.findUniqueOrThrow({ where: { id: postId }, select: counters });
    const after = await tx.post.update({
      where: { id: postId },
      data: { likesCount: { decrement: 1 }, statsVersion: { increment: 1 } },
      select: counters,
    });
    await publishPostUnliked(tx, { postId, userId: user.id, likesCount: after.likesCount, version: after.statsVersion });
    return after;
  });
  return { liked: false, likesCount: result.likesCount, version: result.statsVersion };
}
