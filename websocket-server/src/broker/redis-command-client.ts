/**
 * The command connection that presence and the node-stats store each open beside the broker's
 * pub/sub pair: to one Redis or to a Redis Cluster, with no offline queue (a command while
 * Redis is down fails at once, and its caller's next periodic write tries again) and capped
 * exponential reconnects. One place, so both stores behave alike when Redis blips.
 */
import { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { connectionName } from './redis-status.ts';

export type CommandClient = Redis | Cluster;

export type RedisTarget = { url: string } | { clusterNodes: ReadonlyArray<{ host: string; port: number }> };

export interface CommandClientOptions {
  /** Shown in `CLIENT LIST` as `fonana-ws-<role>:<nodeId>`. */
  role: 'presence' | 'ops';
  nodeId?: string | undefined;
  /** Batches the commands of one tick into few writes (presence refreshes thousands at once). */
  autoPipelining?: boolean;
  logger: Logger;
  /** Level of the 'redis error' log: reconnect noise matters more for some stores than others. */
  errorLevel?: 'debug' | 'warn';
}

const retryStrategy = (attempt: number) => Math.min(100 * 2 ** attempt, 5_000);

export function createCommandClient(target: RedisTarget, options: CommandClientOptions): CommandClient {
  const name = connectionName(options.role, options.nodeId);
  const enableAutoPipelining = options.autoPipelining ?? false;
  const client =
    'url' in target
      ? new Redis(target.url, { retryStrategy, enableOfflineQueue: false, enableAutoPipelining, connectionName: name })
      : new Cluster(
          target.clusterNodes.map(({ host, port }) => ({ host, port })),
          { clusterRetryStrategy: retryStrategy, enableOfflineQueue: false, enableAutoPipelining, redisOptions: { connectionName: name } },
        );
  // Without an error listener an unreachable Redis would crash the process.
  const level = options.errorLevel ?? 'warn';
  client.on('error', (error: Error) => options.logger[level]('redis error', { error: error.message }));
  return client;
}

/** Resolves once the client is connected, or rejects after `timeoutMs`. */
export async function whenReady(client: CommandClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => client.once('ready', () => resolve())),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
