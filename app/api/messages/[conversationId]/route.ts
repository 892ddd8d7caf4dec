import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { idSchema, parseId, parseQuery } from '@/lib/api/validate.ts';
import { conversationMessages, MESSAGES_PAGE } from '@/lib/domain/messages.ts';

const pageQuery = z.object({
  cursor: idSchema.optional(),
  limit: z.coerce.number().int().min(1).max(MESSAGES_PAGE.max).default(MESSAGES_PAGE.default),
});

/**
 * GET /api/messages/:conversationId?cursor=&limit=: the conversation's messages, newest first;
 * `nextCursor` (older messages) is null on the last page. 404 unless the user takes part in it.
 */
export const GET = apiRoute(async (request, params) => {
  const user = await requireUser();
  const conversationId = parseId(params, 'conversationId');
  const { cursor, limit } = parseQuery(request, pageQuery);
  return json(await conversationMessages(user.id, conversationId, { cursor, limit }));
});
