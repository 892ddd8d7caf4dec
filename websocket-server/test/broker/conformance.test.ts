/**
 * One suite, both brokers: whatever the hub relies on must hold for Redis and in-memory alike.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { Broker } from '../../src/broker/broker.ts';
import { coversSince, historyKeys } from '../../src/broker/history-script.ts';
import { MemoryBroker } from '../../src/broker/memory.ts';
import { RedisBroker } from '../../src/broker/redis.ts';
import { createLogger } from '../../src/logger.ts';
import { CONTROL_CHANNEL, HISTORY_POLICIES } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';

/** A channel of `kind` no other test uses (Redis keeps history across tests of a run). */
const fresh = (kind = 'post') => `${kind}_${randomBytes(6).toString('hex')}`;
const body = (payload: string) => JSON.parse(payload) as Record<string, unknown>;

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

    it('delivers published payloads of subscribed channels, unprefixed, with their position', async () => {
      const channel = fresh();
      await broker.subscribe(channel);
      const message = nextMessage();
      const position = await broker.publish(channel, '{"a":1}');
      const [name, payload] = await message;
      expect(name).to.equal(channel);
      expect(position?.offset).to.equal(1);
      expect(body(payload)).to.deep.equal({ offset: 1, epoch: position?.epoch, a: 1 });
    });

    it('does not deliver channels that are not subscribed, nor after unsubscribe', async () => {
      const [held, dropped, never] = [fresh(), fresh(), fresh()];
      await broker.subscribe(held);
      await broker.subscribe(dropped);
      await broker.unsubscribe(dropped);
      await broker.publish(never, '{"v":"x"}');
      await broker.publish(dropped, '{"v":"y"}');
      const sentinel = nextMessage();
      await broker.publish(held, '{"v":"z"}');
      await sentinel;
      expect(received.map(([channel, payload]) => [channel, body(payload).v])).to.deep.equal([[held, 'z']]);
    });

    it('keeps the order of one publisher’s messages, with offsets 1, 2, 3, … per channel', async () => {
      const [channel, other] = [fresh('feed'), fresh('feed')];
      await broker.subscribe(channel);
      for (let i = 0; i < 50; i++) {
        await broker.publish(channel, JSON.stringify({ i }));
        if (i % 10 === 0) await broker.publish(other, '{}');
      }
      while (received.length < 50) await new Promise((r) => setTimeout(r, 5));
      expect(received.map(([, p]) => body(p).i)).to.deep.equal([...Array(50).keys()]);
      expect(received.map(([, p]) => body(p).offset)).to.deep.equal([...Array(50).keys()].map((i) => i + 1));
    });

    it('gives a new channel a position whose epoch the next publish keeps', async () => {
      const channel = fresh('notifications');
      const { position } = await broker.history(channel, null, 10);
      expect(position.offset).to.equal(0);
      expect(position.epoch).to.be.a('string').and.not.equal('');
      const published = await broker.publish(channel, '{"n":1}');
      expect(published).to.deep.equal({ offset: 1, epoch: position.epoch });
    });

    it('returns the events after an offset, in order, and says when the history no longer covers it', async () => {
      const channel = fresh('post');
      const size = HISTORY_POLICIES.post.size;
      for (let i = 1; i <= size + 5; i++) await broker.publish(channel, JSON.stringify({ i }));
      const recent = await broker.history(channel, size, 100);
      expect(recent.position.offset).to.equal(size + 5);
      expect(recent.events.map((e) => e.offset)).to.deep.equal([size + 1, size + 2, size + 3, size + 4, size + 5]);
      expect(recent.events.map((e) => body(e.payload).i)).to.deep.equal([size + 1, size + 2, size + 3, size + 4, size + 5]);
      expect(coversSince(recent, { offset: size, epoch: recent.position.epoch })).to.equal(true);
      // Capped at `size`: events 1…5 are gone, so a client at 0 cannot recover.
      const old = await broker.history(channel, 0, 1_000);
      expect(old.events).to.have.length(size);
      expect(coversSince(old, { offset: 0, epoch: old.position.epoch })).to.equal(false);
      expect(coversSince(old, { offset: 7, epoch: 'another-epoch' })).to.equal(false);
      expect(coversSince(old, { offset: size + 5, epoch: old.position.epoch })).to.equal(true);
    });

    it('publishes control messages without history or position', async () => {
      await broker.subscribe(CONTROL_CHANNEL);
      const message = nextMessage();
      expect(await broker.publish(CONTROL_CHANNEL, '{"type":"x"}')).to.equal(null);
      expect(await message).to.deep.equal([CONTROL_CHANNEL, '{"type":"x"}']);
    });

    it('reports ready, then closed; publish after close rejects', async () => {
      expect(broker.health().state).to.equal('ready');
      await broker.close();
      await broker.close(); // idempotent
      expect(broker.health().state).to.equal('closed');
      let failed = false;
      await broker.publish('post_1', '{}').catch(() => (failed = true));
      expect(failed).to.equal(true);
    });
  });
}

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
