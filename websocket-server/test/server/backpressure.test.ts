import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { Socket } from 'node:net';
import { CLOSE_CODES } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

/**
 * A client that stops reading must not make the server buffer without bound: once more than
 * MAX_BUFFERED_BYTES wait for it, it is closed with 4030 and a reading client goes on.
 */
describe('RealtimeServer › slow consumers', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let redis: Redis;

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    server = await startServer({ env: { MAX_BUFFERED_BYTES: String(256 * 1024) } });
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
    await fixtures?.close();
  });

  it('closes a client that does not read with 4030, and keeps delivering to one that does', async () => {
    const user = await fixtures.user();
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = `post_${post.id}`;
    const stalled = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    const reader = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    await stalled.mustSubscribe(channel);
    await reader.mustSubscribe(channel);
    // Stop reading at the TCP level: the kernel buffers fill, then the server's send buffer.
    (stalled.ws as unknown as { _socket: Socket })._socket.pause();

    const padding = 'x'.repeat(32 * 1024);
    const event = (n: number) => JSON.stringify({ type: 'post_liked', data: { postId: post.id, userId: user.id, likesCount: n, padding } });
    let code: number | undefined;
    void stalled.closed.then((info) => (code = info.code));
    // Loopback socket buffers hold several MiB; publish until the server gives up on the client.
    for (let batch = 0; batch < 40 && code === undefined && server.log().indexOf('closing slow consumer') < 0; batch++) {
      const pipeline = redis.pipeline();
      for (let i = 0; i < 50; i++) pipeline.publish(`${testRedisPrefix('ws:')}${channel}`, event(batch * 50 + i));
      await pipeline.exec();
      await reader.next((f) => (f.data as { likesCount?: number } | undefined)?.likesCount === batch * 50 + 49, 10_000);
    }
    expect(server.log()).to.include('closing slow consumer');
    (stalled.ws as unknown as { _socket: Socket })._socket.resume();
    expect((await stalled.closed).code).to.equal(CLOSE_CODES.slowConsumer);
    expect((await reader.request({ type: 'ping' })).type).to.equal('pong');
    reader.close();
  });
});
