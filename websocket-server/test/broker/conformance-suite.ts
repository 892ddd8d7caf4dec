/**
 * What the hub relies on from any broker, as one mocha suite: `brokerConformance(name, create)`
 * declares `broker/<name>` with a fresh broker from `create` for every test (closed after it).
 * conformance.test.ts runs it for MemoryBroker and RedisBroker, redis-cluster.test.ts for
 * RedisClusterBroker on a local three-node cluster.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Broker } from '../../src/broker/broker.ts';
import { coversSince } from '../../src/broker/history-script.ts';
import { CONTROL_CHANNEL, HISTORY_POLICIES } from '../../src/protocol/index.ts';

/** A channel of `kind` no other test uses (Redis keeps history across tests of a run). */
export const fresh = (kind = 'post') => `${kind}_${randomBytes(6).toString('hex')}`;
export const body = (payload: string) => JSON.parse(payload) as Record<string, unknown>;

export function brokerConformance(name: string, create: () => Promise<Broker>): void {
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
      // Bounded, so that a broker that loses messages fails here instead of leaving a timer loop.
      const deadline = Date.now() + 5_000;
      while (received.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
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
