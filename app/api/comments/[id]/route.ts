import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { deleteComment } from '@/lib/domain/comments.ts';

/** DELETE /api/comments/:id: by the comment's author or the post's author. */
export const DELETE = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await deleteComment(user, parseId(params)));
});
