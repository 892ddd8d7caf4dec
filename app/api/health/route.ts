export const dynamic = 'force-dynamic';

import { log } from '@/lib/log.ts';
import { publishStats } from '@/lib/realtime.ts';
import { outboxBacklog } from '@/lib/realtime/outbox-backlog.ts';
import { wsHealth, wsHealthFails } from '@/lib/ws-health.ts';

/**
 * GET /api/health: the app is up. `publisher`: this process's counters (events enqueued, and
 * invalid ones refused at enqueue time). `outbox`: the backlog the relay has yet to publish
 * (null when the database does not answer). `websocket`: the WebSocket server's own /health at
 * WS_PUBLISH_URL (lib/ws-health.ts): `ok`, `degraded` (it answered 503), `unreachable` (no
 * answer in 1.5 s, refused, not its JSON) or `not_configured`. The answer is 503 with
 * `status: "degraded"` when the WebSocket server is degraded or unreachable, so a monitor that
 * watches this one URL sees the real-time layer go down; the body is the same either way.
 */
export async function GET(): Promise<Response> {
  const { enqueued, invalid, published, failed, lastFailure } = publishStats();
  const [outbox, websocket] = await Promise.all([
    outboxBacklog().catch((error: unknown) => {
      log.warn('reading the outbox backlog failed', { error: (error as Error).message });
      return null;
    }),
    wsHealth(),
  ]);
  const healthy = !wsHealthFails(websocket);
  return Response.json(
    {
      ok: healthy,
      status: healthy ? 'ok' : 'degraded',
      publisher: { enqueued, invalid, published, failed, lastFailureAt: lastFailure?.at ?? null },
      outbox,
      websocket,
    },
    { status: healthy ? 200 : 503, headers: { 'cache-control': 'no-store' } },
  );
}
