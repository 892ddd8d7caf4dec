/**
 * Comments. The Comment row, the post's denormalised `commentsCount` (with its
 * `statsVersion`), the event and the author's notification are written in one transaction.
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { forbidden, notFound } from '../api/errors.ts';
import { publishCommentAdded, publishCommentDeleted, sendNotification } from '../realtime.ts';
import { readablePost } from './post-access.ts';
import { isRecordNotFound } from './prisma-errors.ts';
import { toCommentPayload } from './serialize.ts';

export const MAX_COMMENT_LENGTH = 5000;

const counters = { commentsCount: true, statsVersion: true } as const;

export async function addComment(user: SessionUser, postId: string, content: string) {
  const { post } = await readablePost(user.id, postId);
  return db().$transaction(async (tx) => {
    const comment = await tx.comment.create({
      data: { postId, authorId: user.id, content },
      include: { author: { select: { name: true } } },
    });
    const { commentsCount, statsVersion: version } = await tx.post.update({
      where: { id: postId },
      data: { commentsCount: { increment: 1 }, statsVersion: { increment: 1 } },
      select: counters,
    });
    const payload = toCommentPayload(comment);
    await publishCommentAdded(tx, { comment: payload, commentsCount, version });
    if (post.authorId !== user.id) {
      const excerpt = content.length > 80 ? `${content.slice(0, 79)}…` : content;
      await sendNotification(tx, post.authorId, {
        type: 'COMMENT',
        title: 'New comment',
        message: `${user.name} commented on "${post.title}": ${excerpt}`,
        data: { postId, commentId: comment.id },
      });
    }
    return { comment: payload, commentsCount, version };
  });
}

/** The comment's author or the post's author may delete it. */
export async function deleteComment(user: SessionUser, commentId: string) {
  const comment = await db().comment.findUnique({ where: { id: commentId }, include: { post: { select: { authorId: true } } } });
  if (!comment) throw notFound('no such comment');
  if (comment.authorId !== user.id && comment.post.authorId !== user.id) {
    throw forbidden('only the comment’s author or the post’s author may delete it');
  }
  const { commentsCount, statsVersion: version } = await db()
    .$transaction(async (tx) => {
      await tx.comment.delete({ where: { id: commentId } });
      const after = await tx.post.update({
        where: { id: comment.postId },
        data: { commentsCount: { decrement: 1 }, statsVersion: { increment: 1 } },
        select: counters,
      });
      await publishCommentDeleted(tx, { commentId, postId: comment.postId, commentsCount: after.commentsCount, version: after.statsVersion });
      return after;
    })
    .catch((error: unknown) => {
      if (isRecordNotFound(error)) throw notFound('no such comment');
      throw error;
    });
  return { deleted: true, commentsCount, version };
}
