/**
 * One suite, both brokers: whatever the hub relies on must hold for Redis and in-memory alike.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { coversSince, historyKeys } from '../../src/broker/history-script.ts';
import { MemoryBroker } from '../../src/broker/memory.ts';
import { RedisBroker } from '../../src/broker/redis.ts';
import { createLogger } from '../../src/logger.ts';
import { HISTORY_POLICIES } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { brokerConformance, fresh } from './conformance-suite.ts';

const logger = createLogger({ level: 'error', format: 'json' });

brokerConformance('MemoryBroker', async () => new MemoryBroker());
brokerConformance('RedisBroker', async () => {
  const broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: testRedisPrefix('conformance:'), logger });
  await broker.ready();
  return broker;
});

describe('broker/RedisBroker › history', () => {
  it('starts a new epoch when the history is lost (keys gone, as after a restart without persistence)', async () => {
    const prefix = testRedisPrefix('epoch:');
    const broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: prefix, logger });
    const plain = new Redis(testRedisUrl());
    try {
      await broker.ready();
      const channel = fresh('notifications');
      const before = await broker.publish(channel, '{}');
      const keys = historyKeys(prefix, channel);
      await plain.del(keys.meta, keys.stream);
      const after = await broker.publish(channel, '{}');
      expect(after?.offset).to.equal(1);
      expect(after?.epoch).to.not.equal(before?.epoch);
      const slice = await broker.history(channel, 0, 10);
      expect(coversSince(slice, { offset: before!.offset, epoch: before!.epoch })).to.equal(false);
      expect(await plain.ttl(keys.stream)).to.be.within(1, HISTORY_POLICIES.notifications.ttlSeconds);
    } finally {
      plain.disconnect();
      await broker.close();
    }
  });
});

describe('broker/RedisBroker › interoperability', () => {
  it('receives what a plain Redis client publishes under the prefix', async () => {
    const prefix = testRedisPrefix('interop:');
    const broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: prefix, logger });
    const plain = new Redis(testRedisUrl());
    try {
      await broker.ready();
      const got = new Promise<[string, string]>((resolve) => broker.onMessage((c, p) => resolve([c, p])));
      await broker.subscribe('creator_7');
      await plain.publish(`${prefix}creator_7`, 'hello');
      expect(await got).to.deep.equal(['creator_7', 'hello']);
    } finally {
      plain.disconnect();
      await broker.close();
    }
  });
});
