/**
 * The node stats stores, one suite for all three: in process, on the shared Redis (a prefix of
 * this run's own) and on a local three-node Redis Cluster started here. A snapshot counts for its
 * ttl and then drops out by itself, a removal is immediate, a listing is ordered by node id; the
 * Redis stores leave out an entry that is not a snapshot instead of passing it on.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryNodeStatsStore, type NodeStatsSnapshot, type NodeStatsStore } from '../../src/ops/stats-store.ts';
import { nodeStatsKeys, RedisNodeStatsStore } from '../../src/ops/stats-store-redis.ts';
import { LocalCluster } from '../support/redis-cluster.ts';

const logger = createLogger({ level: 'error', format: 'json' });
const TTL_MS = 400;

function snapshot(nodeId: string, connections = 1): NodeStatsSnapshot {
  const now = new Date().toISOString();
  return {
    nodeId,
    pid: 4242,
    host: 'test-host',
    startedAt: now,
    writtenAt: now,
    broker: 'redis',
    connections,
    users: connections,
    channels: 0,
    subscriptions: 0,
    eventsDeliveredTotal: 5,
    eventsReceivedTotal: 3,
    deliveredPerSecond: 1.5,
    receivedPerSecond: 0.5,
    rateWindowSeconds: 10,
    publishFailuresTotal: 0,
    invalidEventsTotal: 0,
    slowConsumerClosesTotal: 0,
    memory: { rssBytes: 1, heapUsedBytes: 1 },
    eventLoopLagMs: { mean: 0.1, p99: 0.2, max: 0.3 },
  };
}

/** Polls `list()` until `ok` holds; resolves with the ms it took. */
async function listUntil(store: NodeStatsStore, ok: (ids: string[]) => boolean, timeoutMs = 3_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const ids = (await store.list()).map((n) => n.nodeId);
    if (ok(ids)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not met in ${timeoutMs} ms: ${JSON.stringify(ids)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function conformance(name: string, open: () => Promise<{ store: NodeStatsStore; raw?: Redis | Cluster; prefix?: string }>, close: () => Promise<void>) {
  describe(name, () => {
    let store: NodeStatsStore;
    let raw: Redis | Cluster | undefined;
    let prefix: string | undefined;

    before(async function () {
      this.timeout(60_000);
      ({ store, raw, prefix } = await open());
    });
    after(async function () {
      this.timeout(20_000);
      if (raw && prefix) {
        const keys = nodeStatsKeys(prefix);
        await raw.del(keys.expiry, keys.stats);
      }
      await store?.close();
      await close();
    });

    it('lists what was written, ordered by node id, with its age', async () => {
      await store.write(snapshot('node-2', 7), 5_000);
      await store.write(snapshot('node-1', 3), 5_000);
      const listed = await store.list();
      expect(listed.map((n) => n.nodeId)).to.deep.equal(['node-1', 'node-2']);
      expect(listed[1]).to.deep.include({ ...snapshot('node-2', 7), writtenAt: listed[1]!.writtenAt, startedAt: listed[1]!.startedAt });
      expect(listed[0]!.ageMs).to.be.within(0, 1_000);
      // A second write replaces the node's snapshot.
      await store.write(snapshot('node-1', 9), 5_000);
      expect((await store.list()).find((n) => n.nodeId === 'node-1')?.connections).to.equal(9);
      await store.remove('node-1');
      await store.remove('node-2');
      expect(await store.list()).to.deep.equal([]);
    });

    it('a snapshot not written again drops out after its ttl; one rewritten stays', async () => {
      await store.write(snapshot('dying'), TTL_MS);
      await store.write(snapshot('alive'), TTL_MS);
      const refresher = setInterval(() => void store.write(snapshot('alive'), TTL_MS), TTL_MS / 4);
      try {
        const goneMs = await listUntil(store, (ids) => !ids.includes('dying'));
        expect(goneMs, 'ms until gone').to.be.within(TTL_MS - 100, TTL_MS + 400);
        expect((await store.list()).map((n) => n.nodeId)).to.deep.equal(['alive']);
      } finally {
        clearInterval(refresher);
      }
      await store.remove('alive');
      expect(await store.list()).to.deep.equal([]);
    });

    if (name !== 'memory') {
      it('leaves out an entry that is not a snapshot, and lists the others', async function () {
        const keys = nodeStatsKeys(prefix!);
        await store.write(snapshot('good'), 5_000);
        await raw!.zadd(keys.expiry, Date.now() + 60_000, 'junk');
        await raw!.hset(keys.stats, 'junk', '0|{"nodeId":"junk","connections":"many"}');
        await raw!.zadd(keys.expiry, Date.now() + 60_000, 'not-json');
        await raw!.hset(keys.stats, 'not-json', '0|{{{');
        expect((await store.list()).map((n) => n.nodeId)).to.deep.equal(['good']);
        await Promise.all(['good', 'junk', 'not-json'].map((id) => store.remove(id)));
      });
    }
  });
}

describe('ops › node stats stores', function () {
  this.timeout(20_000);

  conformance('memory', async () => ({ store: new MemoryNodeStatsStore() }), async () => {});

  let redis: Redis | undefined;
  conformance(
    'redis',
    async () => {
      const prefix = testRedisPrefix(`stats-store-${randomBytes(3).toString('hex')}:`);
      redis = new Redis(testRedisUrl());
      const store = new RedisNodeStatsStore({ url: testRedisUrl(), prefix, logger });
      await store.ready();
      return { store, raw: redis, prefix };
    },
    async () => {
      redis?.disconnect();
    },
  );

  let cluster: LocalCluster | undefined;
  let clusterClient: Cluster | undefined;
  conformance(
    'redis cluster (three local masters)',
    async () => {
      cluster = await LocalCluster.start();
      const prefix = 'stats-cluster:';
      clusterClient = new Cluster(cluster.seeds);
      const store = new RedisNodeStatsStore({ clusterNodes: cluster.seeds, prefix, logger });
      await store.ready(10_000);
      return { store, raw: clusterClient, prefix };
    },
    async () => {
      clusterClient?.disconnect();
      await cluster?.stop();
    },
  );
});
