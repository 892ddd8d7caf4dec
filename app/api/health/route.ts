export const dynamic = 'force-dynamic';

import { publishStats } from '@/lib/realtime.ts';

/** GET /api/health: the app is up; the publisher's counters show failed publishes. */
export function GET(): Response {
  const { published, failed, invalid, lastFailure } = publishStats();
  return Response.json({ ok: true, publisher: { published, failed, invalid, lastFailureAt: lastFailure?.at ?? null } });
}
