import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody, parseId } from '@/lib/api/validate.ts';
import { addComment, MAX_COMMENT_LENGTH } from '@/lib/domain/comments.ts';

const commentSchema = z.object({ content: z.string().trim().min(1).max(MAX_COMMENT_LENGTH) }).strict();

/** POST /api/posts/:id/comments */
export const POST = apiRoute(async (request, params) => {
  const user = await requireUser();
  const postId = parseId(params);
  const { content } = await parseBody(request, commentSchema);
  return json(await addComment(user, postId, content), 201);
});
