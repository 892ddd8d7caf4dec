import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { notFound } from '@/lib/api/errors.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody, parseId } from '@/lib/api/validate.ts';
import { changePostAccess, deletePost, postForViewer } from '@/lib/domain/posts.ts';

const accessChangeSchema = z
  .object({
    isLocked: z.boolean().optional(),
    requiredTier: z.enum(['BASIC', 'PREMIUM', 'VIP']).optional(),
  })
  .strict()
  .refine((body) => body.isLocked !== undefined || body.requiredTier !== undefined, 'give isLocked, requiredTier or both');

/** GET /api/posts/:id: the post as the viewer may see it (a locked one without its content). */
export const GET = apiRoute(async (_request, params) => {
  const user = await requireUser();
  const post = await postForViewer(user.id, parseId(params));
  if (!post) throw notFound('no such post');
  return json(post);
});

/**
 * PATCH /api/posts/:id {isLocked?, requiredTier?}: its author locks, unlocks or re-tiers it →
 * {post (summary), changed: 'post_locked' | 'post_unlocked' | 'post_retiered' | null}. Sockets
 * that lose access are unsubscribed from post_{id} (reason forbidden).
 */
export const PATCH = apiRoute(async (request, params) => {
  const user = await requireUser();
  const postId = parseId(params);
  const change = await parseBody(request, accessChangeSchema);
  return json(await changePostAccess(user, postId, change));
});

/** DELETE /api/posts/:id: its author deletes it. */
export const DELETE = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await deletePost(user, parseId(params)));
});
