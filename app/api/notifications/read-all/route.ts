import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { markAllRead } from '@/lib/domain/notifications.ts';

/** POST /api/notifications/read-all */
export const POST = apiRoute(async () => {
  const user = await requireUser();
  return json(await markAllRead(user.id));
});
