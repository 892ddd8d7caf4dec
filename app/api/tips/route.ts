import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody } from '@/lib/api/validate.ts';
import { sendTip, tipSchema } from '@/lib/domain/tips.ts';

/**
 * POST /api/tips {creatorId, amountCents (100..100000), message? (≤ 280)}: tip a creator, with a
 * SIMULATED payment. 201 with the tip; 422 bad input or yourself, 404 not a creator.
 */
export const POST = apiRoute(async (request) => {
  const user = await requireUser();
  return json(await sendTip(user, await parseBody(request, tipSchema)), 201);
});
