/**
 * The app's publisher on a Redis Cluster (REDIS_CLUSTER_NODES), against a local three-node
 * cluster this file starts and stops (websocket-server/test/support/redis-cluster.ts) and a real
 * WebSocket server process on the same cluster, with clients authenticated by session tokens:
 *
 * - createTransport picks the cluster transport when REDIS_CLUSTER_NODES is given (also with a
 *   REDIS_URL, as the server does);
 * - an event sent by the transport reaches a subscribed client with the offset and epoch that the
 *   transport's position read (the app's channelPosition) reports afterwards, on one channel and
 *   on channels whose slots live on different masters;
 * - a control message (user_deleted) reaches the node through `<prefix>{$control}`: the user's
 *   socket closes with 4003 while another user's socket keeps receiving;
 * - the outbox relay process, with REDIS_CLUSTER_NODES and no REDIS_URL, publishes what a
 *   transaction enqueued, with its offset;
 * - a cluster nobody listens on fails a publish within the publish timeout instead of hanging.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { publishPostLiked } from '../../lib/realtime.ts';
import { clusterNodesSchema } from '../../lib/realtime/cluster-nodes.ts';
import { createTransport } from '../../lib/realtime/create-transport.ts';
import { PUBLISH_TIMEOUT_MS, type Transport } from '../../lib/realtime/transport.ts';
import { pubSubChannel } from '../../websocket-server/src/broker/history-script.ts';
import { channelName, CLOSE_CODES } from '../../websocket-server/src/protocol/index.ts';
import { TestClient, type Frame } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { LocalCluster } from '../../websocket-server/test/support/redis-cluster.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { freePort } from '../support/ports.ts';
import { testDatabaseUrl, testRedisPrefix, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

const eventId = () => `cluster-${randomBytes(6).toString('hex')}`;
const likesOf = (frame: Frame) => (frame.data as { likesCount?: number }).likesCount;

describe('app › realtime transport on a Redis Cluster (REDIS_CLUSTER_NODES)', function () {
  this.timeout(60_000);

  let cluster: LocalCluster;
  let nodes: string;
  let prefix: string;
  let server: ServerProcess;
  let fixtures: Fixtures;
  let transport: Transport;
  let prisma: PrismaClient | undefined;
  let relay: RelayProcess | undefined;
  const clients: TestClient[] = [];

  before(async function () {
    this.timeout(90_000);
    cluster = await LocalCluster.start();
    nodes = cluster.ports.map((port) => `127.0.0.1:${port}`).join(',');
    prefix = testRedisPrefix('app-cluster:');
    fixtures = new Fixtures();
    server = await startServer({ env: { REDIS_URL: undefined, REDIS_CLUSTER_NODES: nodes, REDIS_CHANNEL_PREFIX: prefix } });
    transport = createTransport({
      redisClusterNodes: clusterNodesSchema.parse(nodes),
      // Ignored, as the server ignores it next to REDIS_CLUSTER_NODES: nothing listens there.
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      redisChannelPrefix: prefix,
      publishUrl: server.httpUrl,
      publishSecret: TEST_PUBLISH_SECRET,
    });
  });

  after(async function () {
    this.timeout(60_000);
    for (const client of clients) client.close();
    await relay?.stop();
    await prisma?.$disconnect();
    await transport?.close();
    await server?.stop();
    await fixtures?.close();
    await cluster?.stop();
  });

  async function subscribed(userId: string, channels: string[]): Promise<TestClient> {
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(userId) });
    clients.push(client);
    for (const channel of channels) await client.mustSubscribe(channel);
    return client;
  }

  /** Posts until their channels' slots are owned by at least two masters; their channels. */
  async function postsOnTwoMasters(creatorId: string): Promise<string[]> {
    const channels: string[] = [];
    const owners = new Set<number>();
    while (owners.size < 2 || channels.length < 3) {
      if (channels.length > 30) throw new Error('no two posts on different masters');
      const channel = channelName.post((await fixtures.post(creatorId)).id);
      channels.push(channel);
      owners.add(await cluster.ownerOf(await cluster.keyslot(pubSubChannel(prefix, channel, 'sharded'))));
    }
    return channels;
  }

  it('is the cluster transport when REDIS_CLUSTER_NODES is set, even with a REDIS_URL', () => {
    expect(transport.kind).to.equal('redis-cluster');
  });

  it('delivers an event it publishes to a client of a server on the cluster, with the offset its position read reports', async () => {
    const user = await fixtures.user();
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const client = await subscribed(user.id, [channel]);
    const before = await transport.position(channel);

    const data = { postId: post.id, userId: user.id, likesCount: 11, version: 11 };
    const id = eventId();
    await transport.send([channel], { type: 'post_liked', data, id });

    const push = await client.next((f) => f.type === 'post_liked' && f.channel === channel);
    const after = await transport.position(channel);
    expect(after).to.deep.equal({ offset: before.offset + 1, epoch: before.epoch });
    expect(push).to.deep.include({ channel, id, data, offset: after.offset, epoch: after.epoch });
  });

  it('fans one event out to channels on different masters, each with its own offset', async () => {
    const user = await fixtures.user();
    const channels = await postsOnTwoMasters((await fixtures.creator()).id);
    const client = await subscribed(user.id, channels);
    const id = eventId();
    // post_liked's data names a post; the server only checks its shape, so one body fits all.
    await transport.send(channels, { type: 'post_liked', data: { postId: 'fanout', userId: user.id, likesCount: 21, version: 21 }, id });

    for (const channel of channels) {
      const push = await client.next((f) => f.type === 'post_liked' && f.channel === channel && f.id === id);
      expect(push).to.deep.include(await transport.position(channel));
      expect(push.offset).to.equal(1);
    }
  });

  it('sends control messages on <prefix>{$control}: user_deleted closes that user\'s socket with 4003, not another user\'s', async () => {
    const [gone, stays] = [await fixtures.user(), await fixtures.user()];
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const goneClient = await subscribed(gone.id, [channel]);
    const staysClient = await subscribed(stays.id, [channel]);

    await transport.sendControl({ type: 'user_deleted', userId: gone.id });
    const closed = await Promise.race([goneClient.closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 5_000))]);
    expect(closed?.code).to.equal(CLOSE_CODES.sessionRevoked);

    // The other socket is open: an event published after the control message reaches it.
    await transport.send([channel], { type: 'post_liked', data: { postId: post.id, userId: stays.id, likesCount: 1, version: 1 }, id: eventId() });
    expect(likesOf(await staysClient.next((f) => f.type === 'post_liked' && f.channel === channel))).to.equal(1);
  });

  it('the outbox relay with REDIS_CLUSTER_NODES and no REDIS_URL publishes what a transaction enqueued, with its offset', async () => {
    relay = await startRelay({ REDIS_URL: '', REDIS_CLUSTER_NODES: nodes, REDIS_CHANNEL_PREFIX: prefix, WS_PUBLISH_SECRET: '', OUTBOX_POLL_INTERVAL_MS: '250' });
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    const user = await fixtures.user();
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const client = await subscribed(user.id, [channel]);
    const before = await transport.position(channel);

    await prisma.$transaction((tx) => publishPostLiked(tx, { postId: post.id, userId: user.id, likesCount: 31, version: 31 }));

    const push = await client.next((f) => f.type === 'post_liked' && f.channel === channel, 15_000);
    expect(likesOf(push)).to.equal(31);
    expect(push).to.deep.include({ offset: before.offset + 1, epoch: before.epoch });
    expect(await transport.position(channel)).to.deep.equal({ offset: before.offset + 1, epoch: before.epoch });
    expect(relay.log()).to.include('redis-cluster');
  });

  it('fails a publish to a cluster nobody listens on within the publish timeout', async () => {
    const dead = createTransport({ redisClusterNodes: [{ host: '127.0.0.1', port: await freePort() }], redisChannelPrefix: prefix, publishUrl: server.httpUrl });
    const started = Date.now();
    try {
      const outcome = await dead.send([channelName.post('nowhere')], { type: 'post_liked', data: { postId: 'nowhere', userId: 'u', likesCount: 1, version: 1 }, id: eventId() }).then(
        () => 'sent',
        (error: Error) => error.message,
      );
      expect(outcome).to.not.equal('sent');
      expect(Date.now() - started).to.be.below(PUBLISH_TIMEOUT_MS + 1_500);
    } finally {
      await dead.close();
    }
  });
});
