/** Comments, with the post's denormalised `commentsCount` kept in the same transaction. */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { forbidden, notFound } from '../api/errors.ts';
import { publishCommentAdded, publishCommentDeleted, sendNotification } from '../realtime.ts';
import { readablePost } from './post-access.ts';
import { isRecordNotFound } from './prisma-errors.ts';
import { toCommentPayload } from './serialize.ts';

export const MAX_COMMENT_LENGTH = 5000;

export async function addComment(user: SessionUser, postId: string, content: string) {
  const { post } = await readablePost(user.id, postId);
  const { comment, commentsCount } = await db().$transaction(async (tx) => {
    const comment = await tx.comment.create({
      data: { postId, authorId: user.id, content },
      include: { author: { select: { name: true } } },
    });
    const { commentsCount } = await tx.post.update({
      where: { id: postId },
      data: { commentsCount: { increment: 1 } },
      select: { commentsCount: true },
    });
    return { comment, commentsCount };
  });
  const payload = toCommentPayload(comment);
  await publishCommentAdded({ comment: payload, commentsCount });
  if (post.authorId !== user.id) {
    const excerpt = content.length > 80 ? `${content.slice(0, 79)}…` : content;
    await sendNotification(post.authorId, {
      type: 'COMMENT',
      title: 'New comment',
      message: `${user.name} commented on "${post.title}": ${excerpt}`,
      data: { postId, commentId: comment.id },
    });
  }
  return { comment: payload, commentsCount };
}

/** The comment's author or the post's author may delete it. */
export async function deleteComment(user: SessionUser, commentId: string) {
  const comment = await db().comment.findUnique({ where: { id: commentId }, include: { post: { select: { authorId: true } } } });
  if (!comment) throw notFound('no such comment');
  if (comment.authorId !== user.id && comment.post.authorId !== user.id) {
    throw forbidden('only the comment’s author or the post’s author may delete it');
  }
  const commentsCount = await db()
    .$transaction(async (tx) => {
      await tx.comment.delete({ where: { id: commentId } });
      const post = await tx.post.update({
        where: { id: comment.postId },
        data: { commentsCount: { decrement: 1 } },
        select: { commentsCount: true },
      });
      return post.commentsCount;
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('no such comment');
      throw error;
    });
  await publishCommentDeleted({ commentId, postId: comment.postId, commentsCount });
  return { deleted: true, commentsCount };
}
