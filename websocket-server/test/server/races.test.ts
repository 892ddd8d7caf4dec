import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { channelName, CLOSE_CODES } from '../../src/protocol/index.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { mintSessionToken } from '../support/tokens.ts';

/**
 * Races between a client's commands, the broker, the database and shutdown. Each one is made
 * deterministic by putting Redis or PostgreSQL behind a TCP proxy that delays or holds the
 * server's traffic, so the window the race needs is open for as long as the test wants.
 */
describe('RealtimeServer › races', () => {
  let fixtures: Fixtures;
  let redis: Redis;
  const redisChannel = (channel: string) => `${testRedisPrefix('ws:')}${channel}`;
  const feedEvent = (postId: string) => JSON.stringify({ type: 'feed_update', data: { reason: 'post_deleted', postId } });

  before(async () => {
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
  });
  after(async () => {
    redis?.disconnect();
    await fixtures?.close();
  });

  describe('with Redis behind a slow link', () => {
    let proxy: TcpProxy;
    let server: ServerProcess;
    const clients: TestClient[] = [];
    const open = async (token: string) => {
      const client = await TestClient.connect(server.url, { token });
      clients.push(client);
      return client;
    };

    before(async () => {
      const proxied = await TcpProxy.forUrl(testRedisUrl());
      proxy = proxied.proxy;
      // startServer resolves once both Redis connections are ready and the server listens.
      server = await startServer({ env: { REDIS_URL: proxied.url } });
    });
    afterEach(() => {
      proxy.delay(0);
      for (const client of clients.splice(0)) client.close();
    });
    after(async () => {
      await server?.stop();
      await proxy?.close();
    });

    it('(a) two sockets join while the SUBSCRIBE is in flight and the first closes: the second still receives', async () => {
      const user = await fixtures.user();
      const token = await mintSessionToken(user.id);
      const feed = channelName.feed(user.id);
      const a = await open(token);
      const b = await open(token);
      // Every command to Redis now takes 300 ms to get there: the SUBSCRIBE stays in flight.
      proxy.delay(300);
      a.sendRaw(JSON.stringify({ type: 'subscribe', channel: feed, id: 'a' }));
      // The pong proves the server read A's subscribe first (a feed is authorized without the
      // database, so A is already waiting on the broker).
      expect((await a.request({ type: 'ping' })).type).to.equal('pong');
      b.sendRaw(JSON.stringify({ type: 'subscribe', channel: feed, id: 'b' }));
      expect((await b.request({ type: 'ping' })).type).to.equal('pong');
      a.close();
      expect((await a.closed).code).to.equal(1000);
      expect(a.frames.some((f) => f.type === 'subscribed'), 'A closed before its SUBSCRIBE completed').to.equal(false);

      const subscribed = await b.next((f) => f.id === 'b' && (f.type === 'subscribed' || f.type === 'error'));
      expect(subscribed.type).to.equal('subscribed');
      // A barrier on the same Redis connection: once this SUBSCRIBE is answered, Redis has also
      // run anything the server sent before it (an UNSUBSCRIBE of the feed, on the old code).
      await b.mustSubscribe(channelName.notifications(user.id));
      proxy.delay(0);

      const receivers = await redis.publish(redisChannel(feed), feedEvent('after-race'));
      expect(receivers, 'the node is still subscribed to the feed in Redis').to.equal(1);
      const push = await b.next((f) => f.type === 'feed_update');
      expect(push).to.deep.include({ channel: feed, data: { reason: 'post_deleted', postId: 'after-race' } });
      const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ subscriptions: 2 });
    });

    it('(b) unsubscribe sent while the subscribe is in flight: subscribed, then unsubscribed, then nothing of the channel', async () => {
      const user = await fixtures.user();
      const creator = await fixtures.creator();
      const client = await open(await mintSessionToken(user.id));
      const control = channelName.feed(user.id);
      const raced = channelName.creator(creator.id);
      await client.mustSubscribe(control);

      proxy.delay(300);
      // Back to back, in one turn: the unsubscribe reaches the server while the subscribe waits
      // on the database and then on Redis.
      client.sendRaw(JSON.stringify({ type: 'subscribe', channel: raced, id: 10 }));
      client.sendRaw(JSON.stringify({ type: 'unsubscribe', channel: raced, id: 11 }));
      await client.next((f) => f.id === 11 && (f.type === 'unsubscribed' || f.type === 'error'));
      const replies = client.frames.filter((f) => f.id === 10 || f.id === 11).map((f) => ({ id: f.id, type: f.type }));
      expect(replies).to.deep.equal([
        { id: 10, type: 'subscribed' },
        { id: 11, type: 'unsubscribed' },
      ]);
      proxy.delay(0);

      // One Redis connection publishes both, so the server receives them in this order: the
      // control channel's event arriving proves the raced one was routed (or dropped) before it.
      const postCreated = JSON.stringify({
        type: 'post_created',
        data: { post: { id: 'p1', authorId: creator.id, title: 'T', isLocked: false, createdAt: new Date().toISOString() } },
      });
      await redis.publish(redisChannel(raced), postCreated);
      await redis.publish(redisChannel(control), feedEvent('control'));
      await client.next((f) => f.type === 'feed_update' && f.channel === control);
      expect(client.pushes(raced), 'nothing of the channel after unsubscribed').to.deep.equal([]);
      const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ subscriptions: 1, channels: 1 });
    });
  });

  describe('(c) shutdown with sockets the server does not track', () => {
    const SHUTDOWN_TIMEOUT_MS = 2_000;
    const proxies: TcpProxy[] = [];
    const servers: ServerProcess[] = [];
    const sockets: Socket[] = [];
    const clients: TestClient[] = [];

    afterEach(async () => {
      for (const client of clients.splice(0)) client.ws.terminate();
      for (const socket of sockets.splice(0)) socket.destroy();
      for (const server of servers.splice(0)) await server.stop('SIGKILL');
      for (const proxy of proxies.splice(0)) await proxy.close();
    });

    /**
     * A server whose database link is held, with three sockets: an ordinary connection, a
     * handshake waiting on the database, and a refused socket that never answers the close frame.
     * Sends SIGTERM and waits until the server says its sockets are closed.
     */
    async function shutDownWithUntrackedSockets() {
      const proxied = await TcpProxy.forUrl(testDatabaseUrl());
      const proxy = proxied.proxy;
      proxies.push(proxy);
      const server = await startServer({
        env: {
          DATABASE_URL: proxied.url,
          // Every handshake must reach the database here (no access cache).
          ACCESS_CACHE_TTL_MS: '0',
          SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
          // The held handshake must not end by itself within the test: only shutdown may end it.
          DATABASE_CONNECT_TIMEOUT_MS: '30000',
          DATABASE_STATEMENT_TIMEOUT_MS: '30000',
        },
      });
      servers.push(server);
      const token = await mintSessionToken((await fixtures.user()).id);
      const connected = await TestClient.connect(server.url, { token });
      clients.push(connected);

      // A handshake that waits on the database: held by the proxy from now on.
      proxy.pause();
      const pending = TestClient.open(server.url, { token });
      clients.push(pending);
      await until(() => proxy.heldUpstreamBytes > 0, 'the handshake’s session lookup reached the database link');

      // A refused socket that never answers the server's close frame (ws alone would wait 30 s).
      const refused = await rawRefusedUpgrade(server.port);
      sockets.push(refused.socket);
      expect(refused.closeCode).to.equal(CLOSE_CODES.unauthorized);

      const started = Date.now();
      server.child.kill('SIGTERM');
      // With the database still held: closing the sockets must not depend on it.
      await until(() => server.log().includes('"server closed"'), 'the server closed its sockets', SHUTDOWN_TIMEOUT_MS + 1_000);
      expect((await connected.closed).code).to.equal(CLOSE_CODES.goingAway);
      expect((await pending.closed).code, 'the held handshake was dropped').to.equal(1006);
      await refused.gone;
      return { server, proxy, started };
    }

    async function exitOf(server: ServerProcess) {
      const code = await Promise.race([server.exited, sleep(SHUTDOWN_TIMEOUT_MS + 6_000).then(() => 'still running' as const)]);
      const bye = logLines(server.log()).find((line) => line.message === 'bye');
      return { code, bye };
    }

    it('ends a held handshake and a refused socket at once, closes Redis and the database, and exits 0 in time', async function () {
      this.timeout(30_000);
      const { server, proxy, started } = await shutDownWithUntrackedSockets();
      // The database answers again, so closing it can finish.
      proxy.resume();
      const { code, bye } = await exitOf(server);
      expect(code, server.log().slice(-3000)).to.equal(0);
      expect(Date.now() - started).to.be.lessThan(SHUTDOWN_TIMEOUT_MS + 2_000);
      expect(bye).to.include({ brokerClosed: true, databaseClosed: true });
      expect(server.log()).to.not.include('shutdown did not finish in time');
    });

    it('with the database still unreachable: gives up on it within its bound, closes Redis, logs bye and exits 0', async function () {
      this.timeout(30_000);
      const { server, started } = await shutDownWithUntrackedSockets();
      const { code, bye } = await exitOf(server);
      expect(code, server.log().slice(-3000)).to.equal(0);
      expect(Date.now() - started).to.be.lessThan(SHUTDOWN_TIMEOUT_MS + 2_000);
      // The session lookup of the dropped handshake still holds a pooled connection: the
      // database close cannot finish, and is abandoned after its bound instead of hanging.
      expect(bye).to.include({ brokerClosed: true, databaseClosed: false });
      expect(server.log()).to.not.include('shutdown did not finish in time');
    });
  });

  describe('(d) the unread snapshot fails', () => {
    let proxy: TcpProxy;
    let server: ServerProcess;
    let client: TestClient | undefined;

    before(async () => {
      const proxied = await TcpProxy.forUrl(testDatabaseUrl());
      proxy = proxied.proxy;
      server = await startServer({
        env: { DATABASE_URL: proxied.url, DATABASE_STATEMENT_TIMEOUT_MS: '500', DATABASE_CONNECT_TIMEOUT_MS: '500', ACCESS_CACHE_TTL_MS: '0' },
      });
    });
    after(async () => {
      client?.close();
      await server?.stop();
      await proxy?.close();
    });

    it('answers only a retryable internal_error, keeps no membership, and a retry once the database is back succeeds', async function () {
      this.timeout(30_000);
      const user = await fixtures.user();
      await fixtures.notification(user.id, { title: 'waiting for you' });
      const notifications = channelName.notifications(user.id);
      client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });

      proxy.pause();
      const reply = await client.subscribe(notifications);
      expect(reply).to.deep.include({ type: 'error', code: 'internal_error', channel: notifications });
      expect(reply.retryAfterMs).to.be.a('number').and.greaterThan(0);
      // The pong comes after anything the subscribe could still send.
      expect((await client.request({ type: 'ping' })).type).to.equal('pong');
      const ofChannel = client.frames.filter((f) => f.channel === notifications);
      expect(ofChannel.map((f) => f.type)).to.deep.equal(['error']);
      const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ subscriptions: 0, channels: 0, database: 'down' });

      proxy.resume();
      await until(async () => ((await (await fetch(`${server.httpUrl}/health`)).json()) as { database?: string }).database === 'up', 'the database is back');
      const retried = await client.subscribe(notifications);
      expect(retried.type, JSON.stringify(retried)).to.equal('subscribed');
      const snapshot = await client.next((f) => f.type === 'unread_notifications');
      const order = client.frames.filter((f) => f.channel === notifications).map((f) => f.type);
      expect(order).to.deep.equal(['error', 'subscribed', 'unread_notifications']);
      expect((snapshot.data as { count: number }).count).to.equal(1);

      const notification = { id: `n-${randomBytes(4).toString('hex')}`, type: 'LIKE', title: 'live', message: 'm', isRead: false, createdAt: new Date().toISOString() };
      await redis.publish(redisChannel(notifications), JSON.stringify({ type: 'notification', data: { notification } }));
      const push = await client.next((f) => f.type === 'notification');
      expect((push.data as { notification: { id: string } }).notification.id).to.equal(notification.id);
    });
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` (an observable state, not a guess at timing) until it holds, or fails. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(20);
  }
}

function logLines(log: string): Array<Record<string, unknown>> {
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/**
 * A WebSocket upgrade with a bad token, by hand: resolves once the 101 and the server's close
 * frame have arrived. The socket never answers that close frame (a peer gone quiet); `gone`
 * resolves when the server drops it.
 */
function rawRefusedUpgrade(port: number): Promise<{ socket: Socket; closeCode: number; gone: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const gone = new Promise<void>((done) => socket.once('close', () => done()));
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`no 101 and close frame: ${received.toString('latin1').slice(0, 500)}`)), 5_000);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) {
        clearTimeout(timer);
        reject(new Error(`expected 101, got ${head.split('\r\n')[0]}`));
        return;
      }
      const frame = received.subarray(end + 4);
      // An unmasked close frame from the server: 0x88, payload length, 2-byte code, reason.
      if (frame.length < 4) return;
      if (frame[0] !== 0x88) {
        clearTimeout(timer);
        reject(new Error(`expected a close frame, got opcode byte ${frame[0]}`));
        return;
      }
      clearTimeout(timer);
      resolve({ socket, closeCode: frame.readUInt16BE(2), gone });
    });
    socket.write(
      [
        'GET / HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        'Authorization: Bearer not-a-session-token',
        '',
        '',
      ].join('\r\n'),
    );
  });
}
