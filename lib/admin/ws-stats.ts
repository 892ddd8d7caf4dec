/**
 * Every WebSocket node's stats snapshot, from `GET <WS_PUBLISH_URL>/stats` (bearer
 * WS_PUBLISH_SECRET): whichever node answers lists every live node, because each one writes its
 * snapshot to the broker's shared store (websocket-server/src/ops/). The same base URL and the
 * same rule as the app's health check (lib/ws-health.ts): with REDIS_URL and no WS_PUBLISH_URL
 * the app knows no server address, and says `not_configured`.
 */
import { z } from 'zod';
import { nodeStatsSnapshotSchema } from '@/websocket-server/src/ops/stats-store.ts';
import { env } from '@/lib/env.ts';

export const WS_STATS_TIMEOUT_MS = 1_500;

const statsAnswerSchema = z.object({
  nodeId: z.string(),
  ttlMs: z.number(),
  store: z.enum(['redis', 'memory']),
  nodes: z.array(nodeStatsSnapshotSchema.extend({ ageMs: z.number() })),
});

export type WsStatsAnswer = z.infer<typeof statsAnswerSchema>;
export type WsNodeStats = WsStatsAnswer['nodes'][number];

export type WsStats =
  | ({ status: 'ok'; url: string; ms: number } & WsStatsAnswer)
  | { status: 'unavailable'; url: string; ms: number; error: string }
  | { status: 'not_configured' };

export async function wsStats(timeoutMs = WS_STATS_TIMEOUT_MS): Promise<WsStats> {
  if (!process.env.WS_PUBLISH_URL && process.env.REDIS_URL) return { status: 'not_configured' };
  const { WS_PUBLISH_URL, WS_PUBLISH_SECRET } = env();
  const url = new URL('/stats', WS_PUBLISH_URL).toString();
  const started = Date.now();
  const unavailable = (error: string) => ({ status: 'unavailable' as const, url, ms: Date.now() - started, error });
  try {
    const response = await fetch(url, {
      headers: WS_PUBLISH_SECRET ? { authorization: `Bearer ${WS_PUBLISH_SECRET}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
      cache: 'no-store',
    });
    const body: unknown = await response.json().catch(() => null);
    if (response.status !== 200) {
      const error = (body as { error?: unknown } | null)?.error;
      return unavailable(`HTTP ${response.status}${typeof error === 'string' ? ` ${error.slice(0, 100)}` : ''}`);
    }
    const parsed = statsAnswerSchema.safeParse(body);
    if (!parsed.success) return unavailable(`HTTP ${response.status}, not the server's /stats JSON`);
    return { status: 'ok', url, ms: Date.now() - started, ...parsed.data };
  } catch (error) {
    const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    return unavailable(e.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(error)));
  }
}
