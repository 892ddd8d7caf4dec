/**
 * One suite, both brokers: whatever the hub relies on must hold for Redis and in-memory alike.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { Broker } from '../../src/broker/broker.ts';
import { MemoryBroker } from '../../src/broker/memory.ts';
import { RedisBroker } from '../../src/broker/redis.ts';
import { createLogger } from '../../src/logger.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';

const logger = createLogger({ level: 'error', format: 'json' });

const factories: Array<[string, () => Promise<Broker>]> = [
  ['MemoryBroker', async () => new MemoryBroker()],
  [
    'RedisBroker',
    async () => {
      const broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: testRedisPrefix('conformance:'), logger });
      await broker.ready();
      return broker;
    },
  ],
];

for (const [name, create] of factories) {
  describe(`broker/${name}`, () => {
    let broker: Broker;
    let received: Array<[string, string]>;
    const nextMessage = () =>
      new Promise<[string, string]>((resolve, reject) => {
        const started = received.length;
        const timer = setInterval(() => {
          if (received.length > started) {
            clearInterval(timer);
            resolve(received[started]!);
          }
        }, 5);
        setTimeout(() => {
          clearInterval(timer);
          reject(new Error('no message'));
        }, 2_000);
      });

    beforeEach(async () => {
      broker = await create();
      received = [];
      broker.onMessage((channel, payload) => received.push([channel, payload]));
    });
    afterEach(() => broker.close());

    it('delivers published payloads of subscribed channels, unprefixed', async () => {
      await broker.subscribe('post_1');
      const message = nextMessage();
      await broker.publish('post_1', '{"a":1}');
      expect(await message).to.deep.equal(['post_1', '{"a":1}']);
    });

    it('does not deliver channels that are not subscribed, nor after unsubscribe', async () => {
      await broker.subscribe('post_2');
      await broker.subscribe('post_3');
      await broker.unsubscribe('post_3');
      await broker.publish('post_9', 'x');
      await broker.publish('post_3', 'y');
      const sentinel = nextMessage();
      await broker.publish('post_2', 'z');
      await sentinel;
      expect(received).to.deep.equal([['post_2', 'z']]);
    });

    it('keeps the order of one publisher’s messages', async () => {
      await broker.subscribe('feed_1');
      for (let i = 0; i < 50; i++) await broker.publish('feed_1', String(i));
      while (received.length < 50) await new Promise((r) => setTimeout(r, 5));
      expect(received.map(([, p]) => Number(p))).to.deep.equal([...Array(50).keys()]);
    });

    it('reports ready, then closed; publish after close rejects', async () => {
      expect(broker.health().state).to.equal('ready');
      await broker.close();
      await broker.close(); // idempotent
      expect(broker.health().state).to.equal('closed');
      let failed = false;
      await broker.publish('post_1', 'x').catch(() => (failed = true));
      expect(failed).to.equal(true);
    });
  });
}

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
