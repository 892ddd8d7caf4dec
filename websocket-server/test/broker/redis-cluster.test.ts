/**
 * RedisClusterBroker against a real three-node Redis Cluster started here (redis-server 7 with
 * `--cluster-enabled yes` on free loopback ports, joined with `redis-cli --cluster create`), never
 * the shared 6379: the conformance suite every broker passes, plus what only a cluster can show
 * (channels on different masters, history keys in their channel's slot, a slot moving, a
 * subscriber connection dropped) and a real server process that uses it.
 */
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import type { Broker } from '../../src/broker/broker.ts';
import { historyKeys, publishManyWithHistory, publishWithHistory, pubSubChannel, readHistory } from '../../src/broker/history-script.ts';
import { RedisBroker } from '../../src/broker/redis.ts';
import { RedisClusterBroker } from '../../src/broker/redis-cluster.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { CONTROL_CHANNEL } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl, TEST_PUBLISH_SECRET } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { LocalCluster } from '../support/redis-cluster.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';
import { body, brokerConformance, fresh } from './conformance-suite.ts';

const logger = createLogger({ level: 'error', format: 'json' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('broker/RedisClusterBroker (a local three-node Redis Cluster)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let prefix: string;

  before(async function () {
    this.timeout(60_000);
    prefix = testRedisPrefix('cluster:');
    cluster = await LocalCluster.start();
  });
  after(async () => {
    await cluster?.stop();
  });

  const open = async () => {
    const broker = new RedisClusterBroker({ nodes: cluster.seeds, channelPrefix: prefix, logger });
    await broker.ready();
    return broker;
  };

  /** One fresh channel of `kind` per master, owners in the order of cluster.ports. */
  async function channelPerMaster(kind = 'post'): Promise<string[]> {
    const byOwner = new Map<number, string>();
    for (let tries = 0; byOwner.size < cluster.ports.length; tries++) {
      if (tries > 500) throw new Error('no channel found for every master');
      const channel = fresh(kind);
      const owner = await cluster.ownerOf(await cluster.keyslot(pubSubChannel(prefix, channel, 'sharded')));
      if (!byOwner.has(owner)) byOwner.set(owner, channel);
    }
    return cluster.ports.map((port) => byOwner.get(port)!);
  }

  brokerConformance('RedisClusterBroker', open);

  describe('sharding', () => {
    let broker: RedisClusterBroker;
    let received: Array<[string, string]>;
    let resubscribed: number;
    const waitFor = (count: number, what: string) => until(async () => received.length >= count, what, 5_000);

    beforeEach(async () => {
      broker = await open();
      received = [];
      resubscribed = 0;
      broker.onMessage((channel, payload) => received.push([channel, payload]));
      broker.onResubscribed(() => resubscribed++);
    });
    afterEach(() => broker.close());

    it('delivers channels whose slots live on each of the three masters', async () => {
      const channels = await channelPerMaster();
      const owners = await Promise.all(channels.map(async (c) => cluster.ownerOf(await cluster.keyslot(pubSubChannel(prefix, c, 'sharded')))));
      expect(new Set(owners).size).to.equal(3);
      for (const channel of channels) await broker.subscribe(channel);
      for (const channel of channels) expect((await broker.publish(channel, `{"c":"${channel}"}`))?.offset).to.equal(1);
      await waitFor(3, 'three deliveries');
      expect(received.map(([channel, payload]) => [channel, body(payload).c, body(payload).offset]).sort()).to.deep.equal(
        channels.map((c) => [c, c, 1]).sort(),
      );
    });

    it('keeps a channel’s history keys in its shard channel’s slot, on the master that delivers it', async () => {
      for (const channel of [...(await channelPerMaster('feed')), CONTROL_CHANNEL]) {
        const { meta, stream } = historyKeys(prefix, channel);
        const slot = await cluster.keyslot(pubSubChannel(prefix, channel, 'sharded'));
        expect(await cluster.keyslot(meta), meta).to.equal(slot);
        expect(await cluster.keyslot(stream), stream).to.equal(slot);
        if (channel === CONTROL_CHANNEL) continue;
        await broker.publish(channel, '{}');
        // EXISTS on the owner itself: another node would answer MOVED.
        expect(await cluster.cli(await cluster.ownerOf(slot), 'exists', meta, stream)).to.equal('2');
      }
    });

    it('speaks SPUBLISH/SSUBSCRIBE on <prefix>{<channel>} with any other cluster client', async () => {
      const other = new Cluster(cluster.seeds, { shardedSubscribers: true });
      other.on('error', () => {});
      try {
        const theirs: Array<[string, string]> = [];
        other.on('smessage', (channel: string, payload: string) => theirs.push([channel, payload]));
        const [mine, yours] = [fresh('creator'), fresh('post')];
        await other.ssubscribe(`${prefix}{${yours}}`);
        await broker.subscribe(mine);
        await other.spublish(`${prefix}{${mine}}`, 'hello');
        const position = await broker.publish(yours, '{"n":1}');
        await waitFor(1, 'the backend’s SPUBLISH');
        await until(async () => theirs.length >= 1, 'the broker’s SPUBLISH');
        expect(received).to.deep.equal([[mine, 'hello']]);
        expect(theirs[0]![0]).to.equal(`${prefix}{${yours}}`);
        expect(body(theirs[0]![1])).to.deep.equal({ offset: 1, epoch: position?.epoch, n: 1 });
      } finally {
        other.disconnect();
      }
    });

    it('publishes one event on many channels across masters (publishManyWithHistory, sharded)', async () => {
      const channels = await channelPerMaster('feed');
      for (const channel of channels) await broker.subscribe(channel);
      const publisher = new Cluster(cluster.seeds);
      publisher.on('error', () => {});
      try {
        await publishManyWithHistory(publisher, prefix, [...channels, CONTROL_CHANNEL], '{"many":true}', 'sharded');
        await publishManyWithHistory(publisher, prefix, channels, '{"many":2}', 'sharded');
      } finally {
        publisher.disconnect();
      }
      await waitFor(6, 'six deliveries');
      for (const channel of channels) {
        expect(received.filter(([c]) => c === channel).map(([, p]) => body(p).offset)).to.deep.equal([1, 2]);
      }
    });

    it('follows a slot that moves to another master (MOVED): re-subscribes there, reports it, and publishes on', async () => {
      const [channel] = await channelPerMaster();
      await broker.subscribe(channel!);
      const first = await broker.publish(channel!, '{"n":1}');
      await waitFor(1, 'the first delivery');
      const slot = await cluster.keyslot(pubSubChannel(prefix, channel!, 'sharded'));
      const target = cluster.ports.find((port) => port !== cluster.ports[0])!;
      await cluster.moveSlot(slot, target);
      expect(await cluster.ownerOf(slot)).to.equal(target);
      await until(async () => resubscribed > 0, 'onResubscribed after the slot moved');
      // The history moved with the slot: offsets go on in the same epoch, at the new owner.
      expect(await broker.publish(channel!, '{"n":2}')).to.deep.equal({ offset: 2, epoch: first?.epoch });
      await waitFor(2, 'a delivery from the new owner');
      expect(received.map(([, p]) => body(p).n)).to.deep.equal([1, 2]);
      expect(resubscribed).to.equal(1);
    });

    it('re-subscribes after a subscriber connection is dropped, and reports it once', async () => {
      const channels = await channelPerMaster();
      for (const channel of channels) await broker.subscribe(channel);
      await sleep(200); // the start-up reset is over
      expect(resubscribed).to.equal(0);
      const victim = await cluster.ownerOf(await cluster.keyslot(pubSubChannel(prefix, channels[1]!, 'sharded')));
      expect(Number(await cluster.cli(victim, 'client', 'kill', 'type', 'pubsub'))).to.be.greaterThan(0);
      await until(async () => resubscribed > 0, 'onResubscribed after the connection was killed');
      for (const channel of channels) await broker.publish(channel, `{"c":"${channel}"}`);
      await waitFor(3, 'deliveries after the re-subscribe');
      expect(received.map(([c]) => c).sort()).to.deep.equal([...channels].sort());
      await sleep(300);
      expect(resubscribed).to.equal(1);
    });

    it('after a master restarts (without persistence): reports the re-subscribe once it is back, and delivers in a new epoch', async function () {
      this.timeout(40_000);
      const channels = await channelPerMaster('notifications');
      for (const channel of channels) await broker.subscribe(channel);
      const before = await broker.publish(channels[2]!, '{"n":1}');
      await waitFor(1, 'the first delivery');
      const victim = cluster.ports[2]!;
      await cluster.kill(victim);
      let failed = false;
      await broker.publish(channels[2]!, '{"n":2}').catch(() => (failed = true));
      expect(failed, 'a publish to a master that is down').to.equal(true);
      await sleep(3_000); // ioredis retries the lost subscriber meanwhile, and fails
      // A re-subscribe that failed is not reported: the recovery it starts could not reach the node.
      expect(resubscribed, 'reports while the master is down').to.equal(0);
      await cluster.restart(victim);
      const back = Date.now();
      await until(async () => resubscribed > 0, 'onResubscribed after the master came back', 15_000);
      expect(resubscribed).to.equal(1);
      expect(Date.now() - back, 'ms from cluster_state:ok to onResubscribed').to.be.below(4_000);
      // Recovery would now read the history: the node lost it, so positions start a new epoch.
      const after = await until(() => broker.publish(channels[2]!, '{"n":3}').then((p) => p ?? undefined), 'a publish after the restart');
      expect(after.offset).to.equal(1);
      expect(after.epoch).to.not.equal(before?.epoch);
      await waitFor(2, 'a delivery from the restarted master');
      expect(received.map(([, p]) => body(p).n)).to.deep.equal([1, 3]);
      // Masters that stayed up kept their subscriptions all along.
      for (const channel of channels.slice(0, 2)) await broker.publish(channel, '{"n":4}');
      await waitFor(4, 'deliveries from the other masters');
    });
  });

  describe('a server process with REDIS_CLUSTER_NODES and no REDIS_URL', () => {
    let fixtures: Fixtures;
    let server: ServerProcess;
    let client: TestClient;
    let publisher: Cluster;
    let postId: string;
    let serverPrefix: string;

    before(async () => {
      serverPrefix = testRedisPrefix('cluster-ws:');
      fixtures = new Fixtures();
      server = await startServer({
        env: { REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.ports.map((p) => `127.0.0.1:${p}`).join(','), REDIS_CHANNEL_PREFIX: serverPrefix },
      });
      const user = await fixtures.user();
      postId = (await fixtures.post((await fixtures.creator()).id)).id;
      client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      await client.mustSubscribe(`post_${postId}`);
      publisher = new Cluster(cluster.seeds);
      publisher.on('error', () => {});
    });
    after(async () => {
      client?.close();
      publisher?.disconnect();
      await server?.stop();
      await fixtures?.close();
    });

    it('uses the cluster broker and reports it ready', async () => {
      const response = await fetch(`${server.httpUrl}/health`);
      expect(await response.json()).to.deep.include({ status: 'ok', redis: 'ready' });
      expect(response.status).to.equal(200);
      expect(server.log()).to.not.include('in-process broker');
    });

    it('delivers an event a backend publishes into the cluster, with its offset', async () => {
      const data = { postId, userId: 'someone', likesCount: 7 };
      const position = await publishWithHistory(publisher, serverPrefix, `post_${postId}`, JSON.stringify({ type: 'post_liked', data }), 'sharded');
      const push = await client.next((f) => f.type === 'post_liked');
      expect(push).to.deep.include({ channel: `post_${postId}`, data, offset: position?.offset, epoch: position?.epoch });
    });

    it('delivers what POST /publish sends through the cluster', async () => {
      const data = { postId, userId: 'someone', likesCount: 8 };
      const response = await fetch(`${server.httpUrl}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_PUBLISH_SECRET}` },
        body: JSON.stringify({ channel: `post_${postId}`, type: 'post_liked', data }),
      });
      const reply = (await response.json()) as { offset?: number; epoch?: string };
      expect(response.status).to.equal(202);
      const push = await client.next((f) => f.type === 'post_liked' && (f.data as { likesCount: number }).likesCount === 8);
      expect(push).to.deep.include({ channel: `post_${postId}`, offset: reply.offset, epoch: reply.epoch });
      // The event is in the channel's history in the cluster, at the offset the server answered.
      const { position } = await readHistory(publisher, serverPrefix, `post_${postId}`, null, 0);
      expect(position).to.deep.equal({ offset: reply.offset, epoch: reply.epoch });
    });
  });
});

describe('broker/history-script › one Redis keeps plain PUBLISH <prefix><channel>', () => {
  it('the RedisBroker’s publish reaches a plain SUBSCRIBE of <prefix><channel>', async () => {
    const prefix = testRedisPrefix('plain:');
    const channel = fresh();
    const broker: Broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: prefix, logger });
    const plain = new Redis(testRedisUrl());
    try {
      await (broker as RedisBroker).ready();
      const got = new Promise<[string, string]>((resolve, reject) => {
        plain.on('message', (c: string, p: string) => resolve([c, p]));
        setTimeout(() => reject(new Error('nothing on the plain channel')), 3_000).unref();
      });
      await plain.subscribe(`${prefix}${channel}`);
      const position = await broker.publish(channel, '{"a":1}');
      const [redisChannel, payload] = await got;
      expect(redisChannel).to.equal(`${prefix}${channel}`);
      expect(body(payload)).to.deep.equal({ offset: 1, epoch: position?.epoch, a: 1 });
    } finally {
      plain.disconnect();
      await broker.close();
    }
  });
});

describe('config › REDIS_CLUSTER_NODES', () => {
  const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: 'postgresql://x', NEXTAUTH_SECRET: 'x', ...extra }) as unknown as NodeJS.ProcessEnv;

  it('parses comma-separated host:port seeds, and is empty when unset', () => {
    expect(loadConfig(env({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,' })).redisClusterNodes).to.deep.equal([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
    ]);
    expect(loadConfig(env()).redisClusterNodes).to.deep.equal([]);
  });

  it('refuses an entry without a valid port', () => {
    for (const value of ['redis-a', 'redis-a:0', 'redis-a:70000', 'redis://a:7000']) {
      expect(() => loadConfig(env({ REDIS_CLUSTER_NODES: value })), value).to.throw(ConfigError, /REDIS_CLUSTER_NODES/);
    }
  });
});
