import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseId } from '@/lib/api/validate.ts';
import { markConversationRead } from '@/lib/domain/messages.ts';

/** POST /api/messages/:conversationId/read: every message of the other participant read. */
export const POST = apiRoute(async (_request, params) => {
  const user = await requireUser();
  return json(await markConversationRead(user.id, parseId(params, 'conversationId')));
});
