/**
 * Publishes with the server's history script (websocket-server/src/broker/history-script.ts):
 * for each channel, one atomic step assigns the channel's next offset, appends the event to its
 * capped stream and PUBLISHes it on `<REDIS_CHANNEL_PREFIX><channel>`, exactly as the server's
 * own POST /publish does, so subscribers can recover what they missed with `since`. Control
 * messages go on `<REDIS_CHANNEL_PREFIX>$control` with a plain PUBLISH (no history).
 *
 * One ioredis connection per process, on globalThis so that dev reloads do not leak
 * connections. A publishing connection never subscribes, so it stays usable for PUBLISH and
 * scripts (ioredis README, "Pub/Sub").
 */
import { Redis } from 'ioredis';
import { publishManyWithHistory, publishWithHistory, readHistory } from '@/websocket-server/src/broker/history-script.ts';
import { CONTROL_CHANNEL } from '@/websocket-server/src/protocol/index.ts';
import { log } from '../log.ts';
import { PUBLISH_TIMEOUT_MS, type Transport } from './transport.ts';

const g = globalThis as typeof globalThis & { __fonanaRedis?: { url: string; client: Redis } };

function client(url: string): Redis {
  if (g.__fonanaRedis?.url === url) return g.__fonanaRedis.client;
  const redis = new Redis(url, {
    // Fail a command after one retry instead of queueing it for ever while Redis is down: the
    // relay then backs off and retries the outbox row later.
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

/**
 * Clients that have run the history script once. publishManyWithHistory builds its pipeline
 * before it registers the scripts on a client, so on a fresh client its first call fails
 * ("pipeline.fonanaPublishWithHistory is not a function"); a single publishWithHistory first
 * registers them.
 */
const scriptsRegistered = new WeakSet<Redis>();

export function redisTransport(url: string, prefix: string): Transport {
  return {
    kind: 'redis',
    async send(channels, payload) {
      const redis = client(url);
      const text = JSON.stringify(payload);
      let rest = channels;
      if (channels.length === 1 || !scriptsRegistered.has(redis)) {
        await publishWithHistory(redis, prefix, channels[0]!, text);
        scriptsRegistered.add(redis);
        rest = channels.slice(1);
      }
      if (rest.length > 0) await publishManyWithHistory(redis, prefix, rest, text);
    },
    async sendControl(message) {
      // Every node subscribes to the control channel for as long as it runs, so 0 receivers only
      // means no node is up: nothing is open that would have to be closed.
      await client(url).publish(`${prefix}${CONTROL_CHANNEL}`, JSON.stringify(message));
    },
    async position(channel) {
      return (await readHistory(client(url), prefix, channel, null, 0)).position;
    },
    async close() {
      const held = g.__fonanaRedis;
      if (held?.url !== url) return;
      delete g.__fonanaRedis;
      await held.client.quit().catch(() => held.client.disconnect());
    },
  };
}
