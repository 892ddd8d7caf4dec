export const dynamic = 'force-dynamic';

import { requireAdmin } from '@/lib/admin/access.ts';
import { opsStats } from '@/lib/admin/ops-stats.ts';
import { apiRoute } from '@/lib/api/handler.ts';

/**
 * GET /api/admin/stats: every WebSocket node's live stats, their totals and the outbox backlog
 * (lib/admin/ops-stats.ts), for the admin page's 2 s poll. 401 signed out, 403 not an admin.
 * 200 even when the WebSocket server or the database does not answer: `websocket.status` and
 * `outbox: null` say which, and the page shows it.
 */
export const GET = apiRoute(async () => {
  await requireAdmin();
  return Response.json(await opsStats(), { headers: { 'cache-control': 'no-store' } });
});
