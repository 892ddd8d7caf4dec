/** The presence conformance suite against both stores: in-process, and Redis (the test run's). */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.ts';
import { MemoryPresence } from '../../src/presence/memory.ts';
import { RedisPresence } from '../../src/presence/redis.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { presenceConformance, recorder, type Announcements } from './conformance-suite.ts';

const logger = createLogger({ level: 'error', format: 'json' });

presenceConformance('MemoryPresence', async (ttlMs) => {
  const store = new MemoryPresence({ ttlMs });
  const recorders = new Map<string, ReturnType<typeof recorder>>();
  store.onAnnouncement((channel, payload) => recorders.get(channel)?.push(payload));
  return {
    store,
    async observe(channel): Promise<Announcements> {
      const heard = recorder();
      recorders.set(channel, heard);
      return heard;
    },
    close: () => store.close(),
  };
});

presenceConformance('RedisPresence', async (ttlMs) => {
  const prefix = testRedisPrefix('presence:');
  const store = new RedisPresence({ url: testRedisUrl(), channelPrefix: prefix, ttlMs, logger });
  await store.ready();
  // What a node's broker does: SUBSCRIBE <prefix><channel>.
  const subscriber = new Redis(testRedisUrl());
  const recorders = new Map<string, ReturnType<typeof recorder>>();
  subscriber.on('message', (redisChannel: string, payload: string) => recorders.get(redisChannel.slice(prefix.length))?.push(payload));
  return {
    store,
    async observe(channel): Promise<Announcements> {
      const heard = recorder();
      recorders.set(channel, heard);
      await subscriber.subscribe(prefix + channel);
      return heard;
    },
    async close() {
      subscriber.disconnect();
      await store.close();
    },
  };
});

describe('presence/RedisPresence › keys', () => {
  it('prefixes every key, hash-tags it with the channel (one Cluster slot) and lets it expire', async () => {
    const prefix = testRedisPrefix('presence-keys:');
    const store = new RedisPresence({ url: testRedisUrl(), channelPrefix: prefix, ttlMs: 5_000, logger });
    const plain = new Redis(testRedisUrl());
    try {
      await store.ready();
      const channel = 'post_keys1';
      await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]);
      await store.announce(channel, 0);
      const keys = (await plain.keys(`${prefix}*`)).sort();
      expect(keys).to.deep.equal([`${prefix}presence:{post_keys1}:clients`, `${prefix}presence:{post_keys1}:state`, `${prefix}presence:{post_keys1}:users`]);
      for (const key of keys) expect(await plain.pttl(key), key).to.be.above(0);
      // The sorted set's score is the entry's expiry, on the Redis clock.
      const [, score] = await plain.zrange(`${prefix}presence:{post_keys1}:clients`, '0', '-1', 'WITHSCORES');
      const [seconds, micros] = await plain.time();
      const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      expect(Number(score) - redisNow).to.be.within(4_000, 5_000);
    } finally {
      plain.disconnect();
      await store.close();
    }
  });
});
