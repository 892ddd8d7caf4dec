import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { unprocessable } from '@/lib/api/errors.ts';
import { requireUser } from '@/lib/api/session.ts';
import { idSchema, parseQuery } from '@/lib/api/validate.ts';
import { clearNotifications, isOwnNotification, listNotifications, NOTIFICATIONS_PAGE } from '@/lib/domain/notifications.ts';

const listQuery = z.object({
  cursor: idSchema.optional(),
  limit: z.coerce.number().int().min(1).max(NOTIFICATIONS_PAGE.max).default(NOTIFICATIONS_PAGE.default),
});

/** GET /api/notifications?cursor=&limit=: newest first; `nextCursor` is null on the last page. */
export const GET = apiRoute(async (request) => {
  const user = await requireUser();
  const { cursor, limit } = parseQuery(request, listQuery);
  if (cursor && !(await isOwnNotification(user.id, cursor))) throw unprocessable('unknown cursor');
  return json(await listNotifications(user.id, { cursor, limit }), 200);
});

/** DELETE /api/notifications: clear them all. */
export const DELETE = apiRoute(async () => {
  const user = await requireUser();
  return json(await clearNotifications(user.id));
});
