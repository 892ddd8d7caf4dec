import { apiRoute } from '@/lib/api/handler.ts';
import { unauthorized } from '@/lib/api/errors.ts';
import { currentSession } from '@/lib/auth.ts';
import { realtimeEndpoint } from '@/lib/realtime/browser-token.ts';

export const dynamic = 'force-dynamic';

/**
 * GET /api/realtime/token → {url, token, expiresAt}; token is null when the cookie suffices. The
 * token carries the session's `sid`, so signing this session out closes the socket it opens; a
 * signed-out, cut-off or deleted session gets 401 like every route.
 */
export const GET = apiRoute(async (request) => {
  const session = await currentSession();
  if (!session) throw unauthorized();
  return Response.json(await realtimeEndpoint(request, session), { headers: { 'cache-control': 'no-store' } });
});
