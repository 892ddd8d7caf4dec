/**
 * The WebSocket server's health as the app sees it, for GET /api/health: monitors that watch
 * one URL learn that the real-time layer is down from the app's answer too.
 *
 * Which server: the one at WS_PUBLISH_URL (`GET <WS_PUBLISH_URL>/health`). It is checked when
 * WS_PUBLISH_URL is set, or when neither REDIS_URL nor REDIS_CLUSTER_NODES is (the app then reaches
 * the server only through that URL, default http://127.0.0.1:3002). With Redis and no WS_PUBLISH_URL the app talks
 * to the servers only through Redis and knows no address of theirs: `not_configured`, and the
 * app's health does not depend on them (ecosystem.config.js always sets WS_PUBLISH_URL).
 */
import { env } from '@/lib/env.ts';

/** Longest wait for the server's /health: a monitor's own timeout is usually several seconds. */
export const WS_HEALTH_TIMEOUT_MS = 1_500;

export type WsHealth =
  | {
      /** The server's own verdict: 200 `ok`, or 503 `degraded` (its database or Redis down, or closing). */
      status: 'ok' | 'degraded';
      url: string;
      httpStatus: number;
      ms: number;
      nodeId?: unknown;
      state?: unknown;
      redis?: unknown;
      database?: unknown;
      connections?: unknown;
    }
  | { status: 'unreachable'; url: string; error: string; ms: number }
  | { status: 'not_configured' };

/** True when the app's health should fail with this answer (HTTP 503). */
export function wsHealthFails(health: WsHealth): boolean {
  return health.status === 'degraded' || health.status === 'unreachable';
}

export async function wsHealth(timeoutMs = WS_HEALTH_TIMEOUT_MS): Promise<WsHealth> {
  if (!process.env.WS_PUBLISH_URL && (process.env.REDIS_URL || process.env.REDIS_CLUSTER_NODES)) return { status: 'not_configured' };
  const url = new URL('/health', env().WS_PUBLISH_URL).toString();
  const started = Date.now();
  let response: Response | undefined;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
    const body = (await response.json()) as Record<string, unknown>;
    const ms = Date.now() - started;
    if (body === null || typeof body !== 'object' || (body.status !== 'ok' && body.status !== 'degraded')) {
      return { status: 'unreachable', url, error: `HTTP ${response.status}, not the server's health JSON`, ms };
    }
    const { nodeId, state, redis, database, connections } = body;
    return {
      status: response.status === 200 && body.status === 'ok' ? 'ok' : 'degraded',
      url,
      httpStatus: response.status,
      ms,
      nodeId,
      state,
      redis,
      database,
      connections,
    };
  } catch (error) {
    const ms = Date.now() - started;
    const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    const reason =
      e.name === 'TimeoutError'
        ? `no answer in ${timeoutMs} ms`
        : response
          ? `HTTP ${response.status}, not the server's health JSON`
          : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(error));
    return { status: 'unreachable', url, error: reason, ms };
  }
}
