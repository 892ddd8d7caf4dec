/**
 * Likes. The Like row and the post's denormalised `likesCount` change in one transaction; the
 * events go out after it committed, and only when something changed (liking twice is a no-op).
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { publishPostLiked, publishPostUnliked, sendNotification } from '../realtime.ts';
import { readablePost } from './post-access.ts';

export async function likePost(user: SessionUser, postId: string) {
  const { post } = await readablePost(user.id, postId);
  const result = await db().$transaction(async (tx) => {
    const { count } = await tx.like.createMany({ data: [{ userId: user.id, postId }], skipDuplicates: true });
    const { likesCount } =
      count === 0
        ? await tx.post.findUniqueOrThrow({ where: { id: postId }, select: { likesCount: true } })
        : await tx.post.update({ where: { id: postId }, data: { likesCount: { increment: 1 } }, select: { likesCount: true } });
    return { changed: count > 0, likesCount };
  });
  if (result.changed) {
    await publishPostLiked({ postId, userId: user.id, likesCount: result.likesCount });
    if (post.authorId !== user.id) {
      await sendNotification(post.authorId, {
        type: 'LIKE',
        title: 'New like',
        message: `${user.name} liked "${post.title}"`,
        data: { postId, userId: user.id },
      });
    }
  }
  return { liked: true, likesCount: result.likesCount };
}

export async function unlikePost(user: SessionUser, postId: string) {
  await readablePost(user.id, postId);
  const result = await db().$transaction(async (tx) => {
    const { count } = await tx.like.deleteMany({ where: { userId: user.id, postId } });
    const { likesCount } =
      count === 0
        ? await tx.post.findUniqueOrThrow({ where: { id: postId }, select: { likesCount: true } })
        : await tx.post.update({ where: { id: postId }, data: { likesCount: { decrement: 1 } }, select: { likesCount: true } });
    return { changed: count > 0, likesCount };
  });
  if (result.changed) await publishPostUnliked({ postId, userId: user.id, likesCount: result.likesCount });
  return { liked: false, likesCount: result.likesCount };
}
