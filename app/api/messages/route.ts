import { z } from 'zod';
import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { idSchema, parseBody, parseQuery } from '@/lib/api/validate.ts';
import { CONVERSATIONS_PAGE, listConversations, MAX_MESSAGE_LENGTH, sendMessage } from '@/lib/domain/messages.ts';

const listQuery = z.object({
  cursor: idSchema.optional(),
  limit: z.coerce.number().int().min(1).max(CONVERSATIONS_PAGE.max).default(CONVERSATIONS_PAGE.default),
});

const sendSchema = z
  .object({
    recipientId: idSchema,
    body: z.string().trim().min(1).max(MAX_MESSAGE_LENGTH),
  })
  .strict();

/**
 * GET /api/messages?cursor=&limit=: the user's conversations, most recently active first, each
 * with the other participant, its last message and its unread count; `unreadCount` is the total.
 */
export const GET = apiRoute(async (request) => {
  const user = await requireUser();
  const { cursor, limit } = parseQuery(request, listQuery);
  return json(await listConversations(user.id, { cursor, limit }));
});

/**
 * POST /api/messages {recipientId, body}: sends a direct message (creating the conversation with
 * the first one). 403 unless one of the two actively subscribes to the other.
 */
export const POST = apiRoute(async (request) => {
  const user = await requireUser();
  const { recipientId, body } = await parseBody(request, sendSchema);
  return json(await sendMessage(user.id, recipientId, body), 201);
});
