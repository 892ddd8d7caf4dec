import { apiRoute, json } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { parseBody } from '@/lib/api/validate.ts';
import { broadcastInputSchema, publishBroadcast, requireAdmin } from '@/lib/domain/broadcast.ts';

export const dynamic = 'force-dynamic';

/**
 * POST /api/admin/broadcast {message, level}: an operator's site-wide notice, shown as a banner
 * on every open page. 401 signed out, 403 not an admin, 422 bad body; 202 once it is in the
 * outbox (delivered by the relay within its polling interval).
 */
export const POST = apiRoute(async (request) => {
  const user = await requireUser();
  await requireAdmin(user.id);
  const input = await parseBody(request, broadcastInputSchema);
  return json({ queued: true, broadcast: await publishBroadcast(user.id, input) }, 202);
});
