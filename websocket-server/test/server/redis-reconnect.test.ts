import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

/**
 * Redis pub/sub is at-most-once: events published while a node's subscriber connection is down
 * are lost for that node. What must hold is that the node reconnects and re-subscribes by
 * itself, so later events arrive without any client action.
 */
describe('RealtimeServer › Redis connection loss', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let redis: Redis;
  const nodeId = `reconnect-${randomBytes(4).toString('hex')}`;

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    server = await startServer({ env: { NODE_ID: nodeId } });
  });
  after(async () => {
    await server?.stop();
    redis?.disconnect();
    await fixtures?.close();
  });

  it('re-subscribes after its subscriber connection is killed, and delivers again', async () => {
    const user = await fixtures.user();
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    await client.mustSubscribe(`feed_${user.id}`);
    const channel = `${testRedisPrefix('ws:')}feed_${user.id}`;

    // Only this server's subscriber connection, found by the name the broker gives it.
    const clients = (await redis.client('LIST')) as string;
    const line = clients.split('\n').find((l) => l.includes(`name=fonana-ws-sub:${nodeId}`));
    expect(line, 'subscriber connection listed by name').to.be.a('string');
    const id = /\bid=(\d+)/.exec(line!)![1]!;
    expect(await redis.client('KILL', 'ID', id)).to.equal(1);

    // Publish until one arrives: the first attempts may fall into the reconnect window.
    const deadline = Date.now() + 10_000;
    let received = false;
    for (let attempt = 0; !received && Date.now() < deadline; attempt++) {
      await redis.publish(channel, JSON.stringify({ type: 'feed_update', data: { reason: 'post_deleted', postId: `p${attempt}` } }));
      received = await client.next((f) => f.type === 'feed_update', 250).then(() => true, () => false);
    }
    expect(received).to.equal(true);
    const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as Record<string, unknown>;
    expect(health).to.include({ redis: 'ready' });
    client.close();
  });
});
