/**
 * `GET /stats`: every live node's latest stats snapshot (ops/node-stats.ts), read from the shared
 * stats store, so whichever node answers (PM2 cluster mode, nginx in front) lists them all. For
 * the app's admin page and operators; bearer `WS_PUBLISH_SECRET` like `POST /publish`, because
 * it names hosts and pids. `{nodeId, ttlMs, nodes: [...]}`: `nodeId` is the node that answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeStatsStore } from '../ops/stats-store.ts';
import { bearerMatches } from './bearer.ts';
import { sendJson } from './body.ts';

export interface StatsHandlerDeps {
  /** The shared store and its NODE_STATS_TTL_MS; without it the route answers 404. */
  nodeStats: { store: NodeStatsStore; ttlMs: number } | undefined;
  secret: string | undefined;
  nodeId: string;
}

export function createStatsHandler({ nodeStats, secret, nodeId }: StatsHandlerDeps) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!nodeStats) {
      sendJson(response, 404, { error: 'not_found', message: 'node stats are not kept by this server' });
      return;
    }
    const { store, ttlMs } = nodeStats;
    if (!secret) {
      sendJson(response, 503, { error: 'publish_disabled', message: 'set WS_PUBLISH_SECRET to enable GET /stats' });
      return;
    }
    if (!bearerMatches(request, secret)) {
      sendJson(response, 401, { error: 'unauthorized', message: 'Authorization: Bearer <WS_PUBLISH_SECRET> required' });
      return;
    }
    try {
      const nodes = await store.list();
      sendJson(response, 200, { nodeId, ttlMs, store: store.kind, nodes });
    } catch (error) {
      sendJson(response, 503, { error: 'broker_unavailable', message: (error as Error).message.slice(0, 200) });
    }
  };
}
