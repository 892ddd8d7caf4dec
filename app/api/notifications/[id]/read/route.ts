import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { markRead } from '@/lib/domain/notifications.ts';

/** POST /api/notifications/:id/read */
export const POST = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await markRead(user.id, parseId(params)));
});
