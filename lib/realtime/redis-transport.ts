/**
 * Publishes with Redis PUBLISH on `<REDIS_CHANNEL_PREFIX><channel>`, control messages on
 * `<REDIS_CHANNEL_PREFIX>$control`. One ioredis connection per
 * process, on globalThis so that dev reloads do not leak connections. A publishing connection
 * never subscribes, so it stays usable for PUBLISH (ioredis README, "Pub/Sub").
 */
import { Redis } from 'ioredis';
import { CONTROL_CHANNEL } from '@/websocket-server/src/protocol/index.ts';
import { log } from '../log.ts';
import { PUBLISH_TIMEOUT_MS, type Transport } from './transport.ts';

const g = globalThis as typeof globalThis & { __fonanaRedis?: { url: string; client: Redis } };

function client(url: string): Redis {
  if (g.__fonanaRedis?.url === url) return g.__fonanaRedis.client;
  const redis = new Redis(url, {
    // Fail a command after one retry instead of queueing it for ever while Redis is down; the
    // request that published is waiting for us.
    maxRetriesPerRequest: 1,
    commandTimeout: PUBLISH_TIMEOUT_MS,
    // Reconnect with a capped delay (ms) so that Redis coming back is noticed within seconds.
    retryStrategy: (times) => Math.min(times * 200, 5_000),
  });
  // Without a listener an 'error' event would crash the process. Log only the first error of a
  // streak: ioredis emits one per reconnect attempt.
  let failing = false;
  redis.on('error', (error: Error) => {
    if (!failing) log.warn('redis publisher error', { error: error.message });
    failing = true;
  });
  redis.on('ready', () => {
    if (failing) log.info('redis publisher reconnected');
    failing = false;
  });
  g.__fonanaRedis = { url, client: redis };
  return redis;
}

export function redisTransport(url: string, prefix: string): Transport {
  return {
    kind: 'redis',
    async send(channels, payload) {
      const text = JSON.stringify(payload);
      const pipeline = client(url).pipeline();
      for (const channel of channels) pipeline.publish(`${prefix}${channel}`, text);
      const results = (await pipeline.exec()) ?? [];
      const failure = results.find(([error]) => error);
      if (failure) throw failure[0];
    },
    async sendControl(message) {
      // Every node subscribes to the control channel for as long as it runs, so 0 receivers only
      // means no node is up: nothing is open that would have to be closed.
      await client(url).publish(`${prefix}${CONTROL_CHANNEL}`, JSON.stringify(message));
    },
  };
}
