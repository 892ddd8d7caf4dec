import { apiRoute, json } from '@/lib/api/handler.ts';
import { notFound } from '@/lib/api/errors.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { deletePost, postForViewer } from '@/lib/domain/posts.ts';

/** GET /api/posts/:id: the post as the viewer may see it (a locked one without its content). */
export const GET = apiRoute(async (_request, params) => {
  const user = await requireUser();
  const post = await postForViewer(user.id, parseId(params));
  if (!post) throw notFound('no such post');
  return json(post);
});

/** DELETE /api/posts/:id: its author deletes it. */
export const DELETE = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await deletePost(user, parseId(params)));
});
