/**
 * `GET /health`: 200 when the server accepts connections and its database and broker answer,
 * 503 otherwise (so a load balancer stops routing to it), JSON either way.
 */
import type { ServerResponse } from 'node:http';
import type { BrokerHealth } from '../broker/broker.ts';
import { sendJson } from './body.ts';

export interface HealthSnapshot {
  state: 'running' | 'closing' | 'closed';
  nodeId: string;
  connections: number;
  channels: number;
  subscriptions: number;
  uptimeSeconds: number;
  broker: BrokerHealth;
}

const DATABASE_PING_TIMEOUT_MS = 1_000;

export async function respondHealth(
  response: ServerResponse,
  snapshot: HealthSnapshot,
  pingDatabase: () => Promise<void>,
): Promise<void> {
  let database: 'up' | 'down' = 'up';
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pingDatabase(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), DATABASE_PING_TIMEOUT_MS);
      }),
    ]);
  } catch {
    database = 'down';
  } finally {
    clearTimeout(timer);
  }
  const healthy = snapshot.state === 'running' && database === 'up' && snapshot.broker.state === 'ready';
  const { broker, ...rest } = snapshot;
  sendJson(response, healthy ? 200 : 503, {
    status: healthy ? 'ok' : 'degraded',
    ...rest,
    redis: broker.kind === 'redis' ? broker.state : 'not_configured',
    database,
  });
}
