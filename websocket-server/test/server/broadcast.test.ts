/**
 * Operator broadcasts (src/broadcast.ts): every authenticated socket, on every node, receives
 * `broadcast` events without subscribing; `broadcast` cannot be subscribed; bad payloads are
 * refused with 400 (HTTP) or dropped with a log line (Redis); the latest notice is sent to a
 * socket that connects while it is retained. Real server processes, real Redis (and one
 * in-process broker), real session tokens.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { testRedisPrefix, testRedisUrl, TEST_PUBLISH_SECRET } from '../../../test/support/env.ts';
import { LocalCluster } from '../support/redis-cluster.ts';
import { TestClient, type Frame } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { metricValue, waitForMetric } from '../support/metrics.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

function publish(server: ServerProcess, body: unknown) {
  return fetch(`${server.httpUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_PUBLISH_SECRET}` },
    body: JSON.stringify(body),
  });
}

const isBroadcast = (message: string) => (f: Frame) => f.type === 'broadcast' && (f.data as { message?: string }).message === message;

describe('RealtimeServer › broadcast', () => {
  let fixtures: Fixtures;
  let redis: Redis;

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    redis?.disconnect();
    await fixtures?.close();
  });

  describe('two server processes sharing Redis', () => {
    let a: ServerProcess;
    let b: ServerProcess;
    let onA: TestClient;
    let onB: TestClient;

    // A prefix of this describe's own: the receiver count below counts every subscriber of the
    // channel, and any other server of the run on the shared prefix would be one.
    let channel: string;

    before(async () => {
      // In before(): the run's prefix is set by the global setup, after files load.
      const prefix = testRedisPrefix(`ws-broadcast-${process.pid}:`);
      channel = `${prefix}broadcast`;
      const env = { REDIS_CHANNEL_PREFIX: prefix };
      [a, b] = await Promise.all([startServer({ env }), startServer({ env })]);
      const [alice, bob] = await Promise.all([fixtures.user({ name: 'alice' }), fixtures.user({ name: 'bob' })]);
      // No subscribe at all: the sockets only ever sent their handshake.
      onA = await TestClient.connect(a.url, { token: await mintSessionToken(alice.id) });
      onB = await TestClient.connect(b.url, { token: await mintSessionToken(bob.id) });
    });
    after(async () => {
      onA?.close();
      onB?.close();
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it('delivers a POST /publish broadcast on one node to sockets with no subscription on both', async () => {
      const response = await publish(a, { channel: 'broadcast', type: 'broadcast', data: { message: 'Maintenance at 03:00 UTC', level: 'warning' } });
      expect(response.status).to.equal(202);
      const { id } = (await response.json()) as { id: string };
      for (const client of [onA, onB]) {
        const push = await client.next(isBroadcast('Maintenance at 03:00 UTC'));
        expect(push).to.deep.include({ type: 'broadcast', channel: 'broadcast', id, data: { message: 'Maintenance at 03:00 UTC', level: 'warning' } });
        expect(push).to.not.have.property('offset');
      }
      await waitForMetric(a.httpUrl, 'ws_broadcast_deliveries_total{when="live"}', (v) => v >= 1);
      await waitForMetric(b.httpUrl, 'ws_broadcast_deliveries_total{when="live"}', (v) => v >= 1);
    });

    it('delivers a broadcast PUBLISHed on Redis ws:broadcast by any backend', async () => {
      const receivers = await redis.publish(channel, JSON.stringify({ type: 'broadcast', data: { message: 'Back to normal', level: 'info' } }));
      expect(receivers).to.equal(2); // one subscriber connection per node, subscribed at start
      await onA.next(isBroadcast('Back to normal'));
      await onB.next(isBroadcast('Back to normal'));
    });

    it('drops a malformed broadcast from Redis and keeps delivering', async () => {
      await redis.publish(channel, 'not json');
      await redis.publish(channel, JSON.stringify({ type: 'broadcast', data: { message: 'bad level', level: 'panic' } }));
      await redis.publish(channel, JSON.stringify({ type: 'post_liked', data: { postId: 'p1', userId: 'u1', likesCount: 1 } }));
      await redis.publish(channel, JSON.stringify({ type: 'broadcast', data: { message: 'after the bad ones', level: 'critical' } }));
      await onB.next(isBroadcast('after the bad ones'));
      expect(onB.frames.filter(isBroadcast('bad level'))).to.be.empty;
      expect(onB.frames.filter((f) => f.type === 'post_liked')).to.be.empty;
      expect(await metricValue(b.httpUrl, 'ws_broadcasts_total{outcome="invalid"}')).to.equal(3);
      expect(b.log()).to.include('dropped malformed broadcast');
    });

    it('answers a subscribe to broadcast with reserved_channel and keeps the connection', async () => {
      const reply = await onA.subscribe('broadcast');
      expect(reply).to.include({ type: 'error', code: 'reserved_channel', channel: 'broadcast' });
      expect(reply.message).to.match(/without a subscribe/);
      expect((await onA.request({ type: 'ping' })).type).to.equal('pong');
    });

    it('refuses bad broadcasts on POST /publish with 400', async () => {
      const bodies = [
        { channel: 'broadcast', type: 'broadcast', data: { message: 'x', level: 'urgent' } },
        { channel: 'broadcast', type: 'broadcast', data: { message: '', level: 'info' } },
        { channel: 'broadcast', type: 'broadcast', data: { message: '   ', level: 'info' } },
        { channel: 'broadcast', type: 'broadcast', data: { message: 'x'.repeat(501), level: 'info' } },
        { channel: 'broadcast', type: 'broadcast', data: { level: 'info' } },
        // The channel carries broadcast events only, and broadcast events go nowhere else.
        { channel: 'broadcast', type: 'post_liked', data: { postId: 'p1', userId: 'u1', likesCount: 1 } },
        { channel: 'notifications_u1', type: 'broadcast', data: { message: 'x', level: 'info' } },
        { channels: ['broadcast', 'feed_u1'], type: 'broadcast', data: { message: 'x', level: 'info' } },
      ];
      for (const body of bodies) {
        const response = await publish(a, body);
        expect(response.status, JSON.stringify(body)).to.equal(400);
        expect(((await response.json()) as { error: string }).error).to.equal('bad_request');
      }
      // None of them reached a socket: the next good one is the next broadcast each sees.
      const before = onA.pushes('broadcast').length;
      expect((await publish(a, { channel: 'broadcast', type: 'broadcast', data: { message: 'good one', level: 'info' } })).status).to.equal(202);
      await onA.next(isBroadcast('good one'));
      expect(onA.pushes('broadcast').slice(before).map((f) => (f.data as { message: string }).message)).to.deep.equal(['good one']);
    });

    it('sends the latest broadcast to a socket that connects while it is retained, with the same id', async () => {
      const response = await publish(b, { channel: 'broadcast', type: 'broadcast', data: { message: 'Read-only until 04:00', level: 'critical' } });
      const { id } = (await response.json()) as { id: string };
      await onA.next(isBroadcast('Read-only until 04:00'));
      const late = await TestClient.connect(a.url, { token: await mintSessionToken((await fixtures.user()).id) });
      try {
        const push = await late.next((f) => f.type === 'broadcast');
        expect(push).to.deep.include({ id, data: { message: 'Read-only until 04:00', level: 'critical' } });
        expect(late.frames.findIndex((f) => f.type === 'connected')).to.be.below(late.frames.indexOf(push));
        expect(late.pushes('broadcast')).to.have.length(1); // the latest only, not every earlier one
        expect(await metricValue(a.httpUrl, 'ws_broadcast_deliveries_total{when="at_connect"}')).to.be.at.least(1);
      } finally {
        late.close();
      }
    });
  });

  describe('in-process broker, BROADCAST_RETAIN_MS=0', () => {
    let server: ServerProcess;

    before(async () => {
      server = await startServer({ broker: 'memory', env: { BROADCAST_RETAIN_MS: '0' } });
    });
    after(async () => {
      await server?.stop();
    });

    it('delivers to every open socket, and a socket that connects later gets only what follows', async () => {
      const users = await Promise.all([fixtures.user(), fixtures.user(), fixtures.user()]);
      const early = await Promise.all(users.slice(0, 2).map(async (u) => TestClient.connect(server.url, { token: await mintSessionToken(u.id) })));
      let late: TestClient | undefined;
      try {
        expect((await publish(server, { channel: 'broadcast', type: 'broadcast', data: { message: 'first', level: 'info' } })).status).to.equal(202);
        for (const client of early) await client.next(isBroadcast('first'));
        late = await TestClient.connect(server.url, { token: await mintSessionToken(users[2]!.id) });
        expect((await publish(server, { channel: 'broadcast', type: 'broadcast', data: { message: 'second', level: 'info' } })).status).to.equal(202);
        await late.next(isBroadcast('second'));
        expect(late.pushes('broadcast').map((f) => (f.data as { message: string }).message)).to.deep.equal(['second']);
        expect(await metricValue(server.httpUrl, 'ws_broadcast_deliveries_total{when="live"}')).to.equal(5);
      } finally {
        for (const client of early) client.close();
        late?.close();
      }
    });
  });

  describe('a Redis Cluster (shard channel ws:{broadcast})', function () {
    this.timeout(60_000);
    let cluster: LocalCluster;
    let nodes: ServerProcess[] = [];

    before(async () => {
      cluster = await LocalCluster.start();
      const env = { REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.ports.map((p) => `127.0.0.1:${p}`).join(','), REDIS_CHANNEL_PREFIX: testRedisPrefix('wsc:') };
      nodes = await Promise.all([startServer({ env }), startServer({ env })]);
    });
    after(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      await cluster?.stop();
    });

    it('reaches sockets with no subscription on both nodes, from POST /publish and from SPUBLISH', async () => {
      const clients = await Promise.all(nodes.map(async (node) => TestClient.connect(node.url, { token: await mintSessionToken((await fixtures.user()).id) })));
      try {
        expect((await publish(nodes[0]!, { channel: 'broadcast', type: 'broadcast', data: { message: 'cluster http', level: 'info' } })).status).to.equal(202);
        for (const client of clients) await client.next(isBroadcast('cluster http'));
        // What a backend does on a Cluster: SPUBLISH at the master that owns the shard channel's slot.
        const shardChannel = `${testRedisPrefix('wsc:')}{broadcast}`;
        const owner = await cluster.ownerOf(await cluster.keyslot(shardChannel));
        const receivers = await cluster.cli(owner, 'spublish', shardChannel, JSON.stringify({ type: 'broadcast', data: { message: 'cluster spublish', level: 'warning' } }));
        expect(receivers.trim()).to.equal('2');
        for (const client of clients) await client.next(isBroadcast('cluster spublish'));
      } finally {
        for (const client of clients) client.close();
      }
    });
  });
});
