/**
 * One suite, both presence stores (presence/memory.ts, presence/redis.ts): the tracker and the
 * channel policies rely on nothing else, so a node without Redis gives the same answers.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Presence } from '../../src/presence/presence.ts';
import { publishedEventSchema } from '../../src/protocol/index.ts';

export interface Announcements {
  readonly payloads: string[];
  /** Resolves with the next announcement, or rejects after `timeoutMs`. */
  next(timeoutMs?: number): Promise<string>;
}

export interface PresenceHarness {
  readonly store: Presence;
  /** Starts recording the announcements of `channel`, as a node subscribed to it receives them. */
  observe(channel: string): Promise<Announcements>;
  close(): Promise<void>;
}

export const fresh = (kind: 'creator' | 'post') => `${kind}_${randomBytes(6).toString('hex')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A recorder fed by `push`, for either implementation; `next` hands each payload out once. */
export function recorder(): Announcements & { push(payload: string): void } {
  const payloads: string[] = [];
  let taken = 0;
  let waiting: (() => void) | undefined;
  return {
    payloads,
    push(payload) {
      payloads.push(payload);
      waiting?.();
    },
    async next(timeoutMs = 2_000) {
      if (taken >= payloads.length) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no announcement in ${timeoutMs} ms (got ${JSON.stringify(payloads)})`)), timeoutMs);
          waiting = () => {
            clearTimeout(timer);
            waiting = undefined;
            resolve();
          };
        });
      }
      return payloads[taken++]!;
    },
  };
}

export function presenceConformance(name: string, make: (ttlMs: number) => Promise<PresenceHarness>): void {
  describe(`presence/${name} (conformance)`, () => {
    let harness: PresenceHarness | undefined;
    const open = async (ttlMs = 10_000) => (harness = await make(ttlMs));
    afterEach(async () => {
      await harness?.close();
      harness = undefined;
    });

    describe('#count', () => {
      it('counts distinct users: two clients of one user count once', async () => {
        const { store } = await open();
        const channel = fresh('post');
        await store.add(channel, [
          { clientId: 'node1/u1', userId: 'u1' },
          { clientId: 'node2/u1', userId: 'u1' },
          { clientId: 'node2/u2', userId: 'u2' },
        ]);
        expect(await store.count(channel)).to.equal(2);
      });

      it('removes entries by client id; the user counts while another of its clients remains', async () => {
        const { store } = await open();
        const channel = fresh('post');
        await store.add(channel, [
          { clientId: 'node1/u1', userId: 'u1' },
          { clientId: 'node2/u1', userId: 'u1' },
          { clientId: 'node2/u2', userId: 'u2' },
        ]);
        await store.remove(channel, ['node2/u2']);
        expect(await store.count(channel)).to.equal(1);
        await store.remove(channel, ['node1/u1', 'unknown']);
        expect(await store.count(channel)).to.equal(1);
        await store.remove(channel, ['node2/u1']);
        expect(await store.count(channel)).to.equal(0);
      });

      it('keeps channels apart, by exact name', async () => {
        const { store } = await open();
        const channel = fresh('post');
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]);
        await store.add(`${channel}1`, [{ clientId: 'n/u2', userId: 'u2' }, { clientId: 'n/u3', userId: 'u3' }]);
        expect(await store.count(channel)).to.equal(1);
        expect(await store.count(`${channel}1`)).to.equal(2);
        expect(await store.count(fresh('post'))).to.equal(0);
      });

      it('stops counting an entry ttl after its last add; adding it again refreshes it', async () => {
        const { store } = await open(400);
        const channel = fresh('post');
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }, { clientId: 'n/u2', userId: 'u2' }]);
        await sleep(250);
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]); // refreshed; u2 is not
        expect(await store.count(channel)).to.equal(2);
        await sleep(250); // u2: 500 ms old, expired; u1: 250 ms
        expect(await store.count(channel)).to.equal(1);
        await sleep(300); // u1: 550 ms
        expect(await store.count(channel)).to.equal(0);
      });
    });

    describe('#announce', () => {
      it('publishes a changed state once, as a valid creator_presence event', async () => {
        const { store, observe } = await open();
        const channel = fresh('creator');
        const creatorId = channel.slice('creator_'.length);
        const heard = await observe(channel);
        await store.add(channel, [{ clientId: 'n/c', userId: creatorId }]);
        expect(await store.announce(channel, 0)).to.deep.include({ outcome: 'published', value: 'true' });
        const online = JSON.parse(await heard.next());
        expect(publishedEventSchema.safeParse(online).success).to.equal(true);
        expect(online).to.deep.equal({ type: 'creator_presence', data: { creatorId, online: true } });
        expect(await store.announce(channel, 0)).to.deep.include({ outcome: 'unchanged', value: 'true' });
        await store.remove(channel, ['n/c']);
        expect(await store.announce(channel, 0)).to.deep.include({ outcome: 'published', value: 'false' });
        expect(JSON.parse(await heard.next())).to.deep.equal({ type: 'creator_presence', data: { creatorId, online: false } });
        await sleep(50);
        expect(heard.payloads).to.have.length(2);
      });

      it('publishes nothing for a channel nobody was ever present on', async () => {
        const { store, observe } = await open();
        const channel = fresh('post');
        const heard = await observe(channel);
        expect(await store.announce(channel, 1_000)).to.deep.include({ outcome: 'unchanged', value: '0' });
        // …and the first real change is not held back by that.
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]);
        expect(await store.announce(channel, 1_000)).to.deep.include({ outcome: 'published', value: '1' });
        expect(JSON.parse(await heard.next())).to.deep.equal({ type: 'viewers', data: { postId: channel.slice('post_'.length), count: 1 } });
      });

      it('holds a change back until minIntervalMs after the previous announcement, and says how long', async () => {
        const { store, observe } = await open();
        const channel = fresh('post');
        const heard = await observe(channel);
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]);
        expect((await store.announce(channel, 400)).outcome).to.equal('published');
        const first = Date.now();
        await store.add(channel, [{ clientId: 'n/u2', userId: 'u2' }]);
        const held = await store.announce(channel, 400);
        expect(held.outcome).to.equal('too_soon');
        const retryInMs = held.outcome === 'too_soon' ? held.retryInMs : -1;
        expect(retryInMs).to.be.within(300, 400);
        await sleep(retryInMs + 5);
        expect(await store.announce(channel, 400)).to.deep.include({ outcome: 'published', value: '2' });
        expect(Date.now() - first).to.be.at.least(400);
        await heard.next();
        await heard.next();
        expect(heard.payloads.map((p) => JSON.parse(p).data.count)).to.deep.equal([1, 2]);
      });

      it('announces a state that changed by expiry alone (a node that died)', async () => {
        const { store, observe } = await open(300);
        const channel = fresh('creator');
        const heard = await observe(channel);
        await store.add(channel, [{ clientId: 'dead-node/c', userId: 'c' }]);
        expect((await store.announce(channel, 0)).outcome).to.equal('published');
        await sleep(400);
        expect(await store.announce(channel, 0)).to.deep.include({ outcome: 'published', value: 'false' });
        await heard.next();
        await heard.next();
        expect(heard.payloads.map((p) => JSON.parse(p).data.online)).to.deep.equal([true, false]);
      });
    });
  });
}
