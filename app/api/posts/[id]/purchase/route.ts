import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { buyPost } from '@/lib/domain/purchases.ts';

/**
 * POST /api/posts/:id/purchase (no body): buy a locked post at its price, with a SIMULATED
 * payment. 201 when bought now, 200 when it had been bought before (not charged again); 404 no
 * such post, 409 already readable, 422 public / not for sale / your own post.
 */
export const POST = apiRoute(async (_request, params) => {
  const user = await requireUser();
  const result = await buyPost(user, parseId(params));
  return json(result, result.created ? 201 : 200);
});
