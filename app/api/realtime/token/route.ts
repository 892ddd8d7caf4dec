import { apiRoute } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { realtimeEndpoint } from '@/lib/realtime/browser-token.ts';

export const dynamic = 'force-dynamic';

/** GET /api/realtime/token → {url, token, expiresAt}; token is null when the cookie suffices. */
export const GET = apiRoute(async (request) => {
  const user = await requireUser();
  return Response.json(await realtimeEndpoint(request, user), { headers: { 'cache-control': 'no-store' } });
});
