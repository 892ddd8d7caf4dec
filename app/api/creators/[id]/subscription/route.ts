import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody, parseId } from '@/lib/api/validate.ts';
import { subscribe, unsubscribe } from '@/lib/domain/subscriptions.ts';

const subscribeSchema = z.object({ tier: z.enum(['BASIC', 'PREMIUM', 'VIP']).default('BASIC') }).strict();

/** POST /api/creators/:id/subscription {tier?}: subscribe (201 when new, 200 when it already was). */
export const POST = apiRoute(async (request, params) => {
  const user = await requireUser();
  const creatorId = parseId(params);
  const { tier } = await parseBody(request, subscribeSchema);
  const { subscription, created } = await subscribe(user, creatorId, tier);
  return json(
    { subscription: { id: subscription.id, creatorId, tier: subscription.tier, status: subscription.status, expiresAt: subscription.expiresAt }, created },
    created ? 201 : 200,
  );
});

/** DELETE /api/creators/:id/subscription: cancel. */
export const DELETE = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await unsubscribe(user, parseId(params)));
});
