/** What the Redis and Redis Cluster brokers share about their ioredis connections. */
import type { BrokerState } from './broker.ts';

/** Shown in Redis `CLIENT LIST`; client names allow no spaces, so a safe alphabet only. */
export function connectionName(role: 'sub' | 'pub' | 'presence' | 'ops', nodeId: string | undefined): string {
  return `fonana-ws-${role}${nodeId ? `:${nodeId.replace(/[^A-Za-z0-9:._-]/g, '_')}` : ''}`;
}

/** One broker state from the ioredis statuses of its connections. */
export function combineStatuses(...statuses: string[]): BrokerState {
  if (statuses.every((s) => s === 'ready')) return 'ready';
  if (statuses.some((s) => s === 'end' || s === 'close' || s === 'reconnecting')) return 'down';
  return 'connecting';
}
