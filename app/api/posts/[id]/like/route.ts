import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { likePost, unlikePost } from '@/lib/domain/likes.ts';

/** POST /api/posts/:id/like (idempotent). */
export const POST = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await likePost(user, parseId(params)));
});

/** DELETE /api/posts/:id/like (idempotent). */
export const DELETE = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await unlikePost(user, parseId(params)));
});
