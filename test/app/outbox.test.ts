/**
 * The transactional outbox end to end, with real processes: the app (`next start` of the e2e
 * build), the WebSocket server (Redis broker), and outbox relays (scripts/outbox-relay.ts) as
 * child processes, against this run's scratch database and Redis.
 *
 * - a like commits its Like row, its notification and its two outbox rows in one transaction;
 *   with the publisher down the API still answers, the rows wait (attempts growing), and once it
 *   is back the relay delivers them, in order, to subscribed clients;
 * - two relays draining one outbox of 500 events publish each exactly once;
 * - an idle relay wakes on NOTIFY (the added latency, row createdAt → a subscriber's receipt, is
 *   printed: p50/p99 over 200 events), and again after its LISTEN connection was cut;
 * - a relay killed between publish and commit leaves the row unsent, and the next relay sends it
 *   again with the same event id;
 * - control messages go through the outbox to `$control`, without history; a transaction that
 *   rolls back publishes nothing.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { announceSubscriptionChange, enqueue, publishPostLiked } from '../../lib/realtime.ts';
import { LISTENER_APPLICATION_NAME } from '../../lib/realtime/outbox-relay.ts';
import { TestClient, type Frame } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { freePort } from '../support/ports.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { ControlRecorder } from './support/auth-flow.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

type Json = Record<string, unknown>;

/** A switchable TCP path to Redis: closed, every connection is cut and new ones are refused. */
class RedisGate {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #open = true;

  private constructor(readonly port: number, server: Server, target: URL) {
    this.#server = server;
    server.on('connection', (client) => {
      if (!this.#open) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: target.hostname, port: Number(target.port || 6379) });
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.#sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
  }

  static async start(redisUrl: string): Promise<RedisGate> {
    const port = await freePort();
    const server = createServer();
    const gate = new RedisGate(port, server, new URL(redisUrl));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return gate;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  close(): void {
    this.#open = false;
    for (const socket of this.#sockets) socket.destroy();
  }

  open(): void {
    this.#open = true;
  }

  async stop(): Promise<void> {
    this.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the outbox sends on post channels (the server may push others of its own, such as presence). */
const POST_EVENTS = new Set(['post_liked', 'post_unliked', 'comment_added', 'comment_deleted', 'post_deleted']);
const postEvents = (client: TestClient, channel?: string) => client.pushes(channel).filter((f) => POST_EVENTS.has(f.type));

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

describe('the transactional outbox (app, relays, WebSocket server)', function () {
  this.timeout(60_000);

  let prefix: string;
  let prisma: PrismaClient;
  let ws: ServerProcess;
  const clients: TestClient[] = [];
  const relays: RelayProcess[] = [];

  const relay = async (env: Record<string, string | undefined> = {}, options: { waitReady?: boolean } = {}) => {
    const started = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix, ...env }, options);
    relays.push(started);
    return started;
  };

  const user = (name: string, isCreator = false) =>
    prisma.user.create({
      data: { email: `${name}-${randomBytes(5).toString('hex')}@test.invalid`, name, passwordHash: 'not-a-real-hash', isCreator },
    });

  async function socketAs(userId: string, ...channels: string[]): Promise<TestClient> {
    const client = await TestClient.connect(ws.url, { token: await mintSessionToken(userId) });
    clients.push(client);
    for (const channel of channels) await client.mustSubscribe(channel);
    return client;
  }

  const outboxRows = (where = 'TRUE') =>
    prisma.$queryRawUnsafe<Array<{ id: bigint; type: string; channels: string[]; eventId: string; attempts: number; sentAt: Date | null; createdAt: Date; xmin: string }>>(
      `SELECT "id", "type", "channels", "eventId"::text AS "eventId", "attempts", "sentAt", "createdAt", xmin::text AS "xmin" FROM "OutboxEvent" WHERE ${where} ORDER BY "id"`,
    );

  before(async () => {
    prefix = testRedisPrefix('ws:');
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 3 });
    // Other suites of this run may have left rows their relays never sent; they are not ours.
    await prisma.$executeRaw`DELETE FROM "OutboxEvent"`;
    ws = await startServer({ env: { LOG_LEVEL: 'info' } });
  });

  afterEach(async function () {
    for (const client of clients.splice(0)) client.close();
    const stopping = relays.splice(0);
    await Promise.all(stopping.map((r) => r.stop()));
    if (this.currentTest?.state === 'failed') {
      for (const r of stopping) console.log(`      relay log (tail):\n${r.log().slice(-3000)}`);
    }
  });

  after(async () => {
    await ws?.stop();
    await prisma?.$disconnect();
  });

  describe('a like through the real app, with the publisher down and back', function () {
    let app: AppProcess;
    let gate: RedisGate;

    before(async function () {
      this.timeout(240_000);
      await ensureAppBuilt();
      gate = await RedisGate.start(testRedisUrl());
      app = await startApp({
        DATABASE_URL: testDatabaseUrl(),
        DATABASE_POOL_MAX: '3',
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
        // The app never publishes itself; it reads channel positions from this Redis.
        REDIS_URL: testRedisUrl(),
        REDIS_CHANNEL_PREFIX: prefix,
      });
    });

    after(async () => {
      await app?.stop();
      await gate?.stop();
    });

    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
    });

    it('commits the change, its notification and its outbox rows in one transaction; answers while Redis is unreachable; delivers in order once it is back', async function () {
      const alice = await user('Alice', true);
      const bob = await user('Bob');
      const carol = await user('Carol');
      const post = await prisma.post.create({ data: { authorId: alice.id, title: 'Outbox post', content: 'Public.' } });
      const cookie = `next-auth.session-token=${await mintSessionToken(bob.id, { claims: { name: bob.name, email: bob.email } })}`;
      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${app.url}${path}`, {
          method,
          headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: response.status, json: (await response.json()) as Json };
      };

      const watcher = await socketAs(carol.id, channelName.post(post.id));
      const author = await socketAs(alice.id, channelName.notifications(alice.id));
      // The relay reaches Redis only through the gate; closed, every publish fails. No relay
      // runs now, and this test counts every row from here on.
      gate.close();
      await prisma.$executeRaw`DELETE FROM "OutboxEvent"`;

      const liked = await call('POST', `/api/posts/${post.id}/like`);
      expect(liked).to.deep.equal({ status: 200, json: { liked: true, likesCount: 1, version: 1 } });
      // One transaction wrote the Like row, the counters, the Notification row and both outbox
      // rows: they carry one xmin (read before any relay touches the rows: an UPDATE of a row,
      // such as a failed attempt's, gives it the updating transaction's xmin).
      const [likeXmin] = await prisma.$queryRaw<Array<{ xmin: string }>>`
        SELECT xmin::text AS "xmin" FROM "Like" WHERE "userId" = ${bob.id} AND "postId" = ${post.id}`;
      const [postXmin] = await prisma.$queryRaw<Array<{ xmin: string; likesCount: number; statsVersion: number }>>`
        SELECT xmin::text AS "xmin", "likesCount", "statsVersion" FROM "Post" WHERE "id" = ${post.id}`;
      const [notificationXmin] = await prisma.$queryRaw<Array<{ xmin: string; type: string }>>`
        SELECT xmin::text AS "xmin", "type" FROM "Notification" WHERE "userId" = ${alice.id}`;
      const likeRows = await outboxRows();
      expect(likeRows.map((r) => [r.type, r.attempts, r.sentAt])).to.deep.equal([
        ['post_liked', 0, null],
        ['notification', 0, null],
      ]);
      expect(postXmin).to.include({ likesCount: 1, statsVersion: 1 });
      expect(notificationXmin).to.include({ type: 'LIKE' });
      expect([postXmin!.xmin, notificationXmin!.xmin, ...likeRows.map((r) => r.xmin)], 'one transaction').to.deep.equal(Array(4).fill(likeXmin!.xmin));

      // Now a relay, which cannot reach Redis: the API goes on answering.
      const publisher = await relay({ REDIS_URL: gate.url, OUTBOX_MAX_BACKOFF_MS: '1000' });
      const commented = await call('POST', `/api/posts/${post.id}/comments`, { content: 'while Redis is away' });
      expect(commented.status).to.equal(201);
      expect(commented.json).to.include({ commentsCount: 1, version: 2 });
      const unliked = await call('DELETE', `/api/posts/${post.id}/like`);
      expect(unliked).to.deep.equal({ status: 200, json: { liked: false, likesCount: 0, version: 3 } });

      const notifications = await prisma.$queryRaw<Array<{ id: string; type: string }>>`
        SELECT "id", "type" FROM "Notification" WHERE "userId" = ${alice.id} ORDER BY "createdAt", "id"`;
      expect(notifications.map((n) => n.type)).to.deep.equal(['LIKE', 'COMMENT']);
      const rows = await outboxRows();
      expect(rows.map((r) => r.type)).to.deep.equal(['post_liked', 'notification', 'comment_added', 'notification', 'post_unliked']);
      expect(rows.map((r) => r.channels[0])).to.deep.equal([
        channelName.post(post.id),
        channelName.notifications(alice.id),
        channelName.post(post.id),
        channelName.notifications(alice.id),
        channelName.post(post.id),
      ]);
      expect((await call('POST', `/api/posts/${post.id}/like`)).json).to.deep.equal({ liked: true, likesCount: 1, version: 4 });
      expect((await outboxRows()).slice(5).map((r) => r.type)).to.deep.equal(['post_liked', 'notification']);

      // Nothing is sent while Redis is unreachable; the relay keeps trying, with growing attempts.
      const waiting = await until('attempts to grow on the first row', async () => {
        const [first] = await outboxRows();
        return first && first.attempts >= 3 ? first : null;
      });
      expect(waiting.sentAt).to.equal(null);
      expect((await outboxRows()).every((r) => r.sentAt === null)).to.equal(true);
      const health = (await (await fetch(`${app.url}/api/health`)).json()) as { outbox: Json };
      expect(health.outbox).to.include({ pending: 7, failed: 0 });
      expect(Number(health.outbox.maxAttempts)).to.be.at.least(3);
      expect(postEvents(watcher)).to.deep.equal([]);
      expect(author.pushes(channelName.notifications(alice.id)).filter((f) => f.type === 'notification')).to.deep.equal([]);

      // Back: everything arrives, in order, with the ids of the outbox rows.
      gate.open();
      const onPost = await until('the four post events', async () => {
        const pushes = postEvents(watcher, channelName.post(post.id));
        return pushes.length >= 4 ? pushes : null;
      }, 20_000);
      const sent = await outboxRows();
      const postRows = sent.filter((r) => r.channels[0] === channelName.post(post.id));
      expect(onPost.map((f) => [f.type, (f.data as Json).version, f.id])).to.deep.equal(postRows.map((r, i) => [r.type, i + 1, r.eventId]));
      const offsets = onPost.map((f) => Number(f.offset));
      expect(offsets, 'offsets follow the outbox order').to.deep.equal([...offsets].sort((a, b) => a - b));
      const bell = await until('the three notifications', async () => {
        const pushes = author.pushes(channelName.notifications(alice.id)).filter((f) => f.type === 'notification');
        return pushes.length >= 3 ? pushes : null;
      });
      expect(bell.map((f) => ((f.data as { notification: Json }).notification.type))).to.deep.equal(['LIKE', 'COMMENT', 'LIKE']);
      await until('every row marked sent', async () => (await outboxRows()).every((r) => r.sentAt !== null));
      expect(publisher.log()).to.include('publish failed; retrying with backoff').and.include('publishing again');
    });
  });

  it('two relays on one outbox of 500 events publish each exactly once', async function () {
    const author = await user('Busy', true);
    const reader = await user('Reader');
    const post = await prisma.post.create({ data: { authorId: author.id, title: 'Busy post', content: 'Public.' } });
    const channel = channelName.post(post.id);
    const watcher = await socketAs(reader.id, channel);
    // Both idle, woken by the same NOTIFY; small batches so that they take turns.
    const [a, b] = await Promise.all([
      relay({ OUTBOX_BATCH_SIZE: '20', OUTBOX_RELAY_NAME: 'relay-a' }),
      relay({ OUTBOX_BATCH_SIZE: '20', OUTBOX_RELAY_NAME: 'relay-b' }),
    ]);
    const total = 500;
    await prisma.$transaction(
      async (tx) => {
        for (let i = 1; i <= total; i++) await publishPostLiked(tx, { postId: post.id, userId: reader.id, likesCount: i, version: i });
      },
      { timeout: 30_000 },
    );
    const ids = new Set((await outboxRows(`'${channel}' = ANY("channels")`)).map((r) => r.eventId));
    expect(ids.size).to.equal(total);
    await until('every event at the subscriber', async () => new Set(postEvents(watcher, channel).map((f) => f.id)).size >= total, 30_000);
    await until('every row marked sent', async () => (await outboxRows('"sentAt" IS NULL')).length === 0);
    // Anything sent twice would have followed its first copy by now: a ping's round trip after
    // the last commit.
    await watcher.request({ type: 'ping' });
    await new Promise((r) => setTimeout(r, 300));
    const received = postEvents(watcher, channel).map((f) => f.id);
    expect(received).to.have.length(total);
    expect(new Set(received)).to.deep.equal(ids);
    await Promise.all([a!.stop(), b!.stop()]);
    const [byA, byB] = [a!.finalCounts()?.published ?? 0, b!.finalCounts()?.published ?? 0];
    console.log(`      published by relay-a / relay-b: ${byA} / ${byB}`);
    expect(byA + byB).to.equal(total);
    expect(Math.min(byA, byB), 'both relays took batches').to.be.greaterThan(0);
  });

  it('an idle relay wakes on NOTIFY: added latency from the row’s createdAt to a subscriber’s receipt', async function () {
    const author = await user('Quick', true);
    const reader = await user('Watcher');
    const post = await prisma.post.create({ data: { authorId: author.id, title: 'Quick post', content: 'Public.' } });
    const channel = channelName.post(post.id);
    const watcher = await socketAs(reader.id, channel);
    const arrivals = new Map<string, number>();
    watcher.ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as Frame;
      if (frame.type === 'post_liked') arrivals.set(String(frame.id), Date.now());
    });
    // A minute between polls: only a NOTIFY can wake it within the test.
    const notified = await relay({ OUTBOX_POLL_INTERVAL_MS: '60000', OUTBOX_RELAY_NAME: 'relay-latency' });
    const events = 200;
    for (let i = 1; i <= events; i++) {
      await prisma.$transaction((tx) => publishPostLiked(tx, { postId: post.id, userId: reader.id, likesCount: i, version: i }));
      // Idle in between: each event finds the relay asleep.
      await until(`event ${i}`, async () => arrivals.size >= i, 5_000);
      await new Promise((r) => setTimeout(r, 15));
    }
    const rows = await outboxRows(`'${channel}' = ANY("channels")`);
    expect(rows).to.have.length(events);
    const latencies = rows.map((r) => arrivals.get(r.eventId)! - r.createdAt.getTime()).sort((x, y) => x - y);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    console.log(`      outbox added latency over ${events} events (createdAt → receipt): p50 ${p50} ms, p99 ${p99} ms, max ${latencies.at(-1)} ms`);
    expect(p99, 'far below the 60 s poll: woken by NOTIFY').to.be.below(1_000);
    await notified.stop();
    expect(notified.finalCounts()).to.include({ polls: 0 });
  });

  it('the LISTEN connection, cut by the database, comes back: NOTIFY wakes the relay again', async function () {
    const author = await user('Listen', true);
    const reader = await user('Ear');
    const post = await prisma.post.create({ data: { authorId: author.id, title: 'Listen post', content: 'Public.' } });
    const channel = channelName.post(post.id);
    const watcher = await socketAs(reader.id, channel);
    const listener = await relay({ OUTBOX_POLL_INTERVAL_MS: '60000', OUTBOX_RELAY_NAME: 'relay-listen' });
    const listenPids = () =>
      prisma.$queryRaw<Array<{ pid: number }>>`
        SELECT pid FROM pg_stat_activity WHERE application_name = ${LISTENER_APPLICATION_NAME} AND datname = current_database()`;
    const [before] = await listenPids();
    expect(before, 'the relay LISTENs on a connection of its own').to.not.equal(undefined);
    await prisma.$queryRaw`SELECT pg_terminate_backend(${before!.pid}::int)`;
    const after = await until('a new LISTEN connection', async () => {
      const pids = await listenPids();
      return pids.length === 1 && pids[0]!.pid !== before!.pid ? pids[0] : null;
    });
    expect(after!.pid).not.to.equal(before!.pid);
    await until('the relay to LISTEN again', async () => listener.log().includes('listening again'));
    const sent = Date.now();
    await prisma.$transaction((tx) => publishPostLiked(tx, { postId: post.id, userId: reader.id, likesCount: 1, version: 1 }));
    await watcher.next((f) => f.type === 'post_liked', 3_000);
    expect(Date.now() - sent, 'woken by NOTIFY, not the 60 s poll').to.be.below(2_000);
    expect(listener.log()).to.include('LISTEN connection lost');
  });

  it('a relay killed between publish and commit: the row stays unsent, and the next relay sends it again with the same id', async function () {
    const author = await user('Crash', true);
    const reader = await user('Witness');
    const post = await prisma.post.create({ data: { authorId: author.id, title: 'Crash post', content: 'Public.' } });
    const channel = channelName.post(post.id);
    const watcher = await socketAs(reader.id, channel);
    const doomed = await relay({ OUTBOX_RELAY_DRILL: 'crash-before-commit', OUTBOX_RELAY_NAME: 'relay-doomed' });
    await prisma.$transaction((tx) => publishPostLiked(tx, { postId: post.id, userId: reader.id, likesCount: 1, version: 1 }));
    const first = await watcher.next((f) => f.type === 'post_liked');
    expect(await doomed.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    const [row] = await outboxRows(`'${channel}' = ANY("channels")`);
    expect(row).to.include({ eventId: first.id, sentAt: null, attempts: 0 });

    await relay({ OUTBOX_RELAY_NAME: 'relay-next' });
    const copies = await until('the second copy', async () => {
      const pushes = postEvents(watcher, channel);
      return pushes.length >= 2 ? pushes : null;
    });
    expect(copies.map((f) => f.id)).to.deep.equal([first.id, first.id]);
    // A new position for the copy: clients drop it by id, not by offset.
    expect(Number(copies[1]!.offset)).to.equal(Number(copies[0]!.offset) + 1);
    await until('the row marked sent', async () => (await outboxRows(`'${channel}' = ANY("channels")`))[0]?.sentAt);
    const [sentRow] = await outboxRows(`'${channel}' = ANY("channels")`);
    expect(sentRow!.attempts).to.equal(1);
  });

  it('control messages go through the outbox to $control, without history; a rolled-back transaction publishes nothing', async function () {
    const recorder = await ControlRecorder.start(testRedisUrl(), prefix);
    const redis = new Redis(testRedisUrl(), { lazyConnect: true });
    try {
      await redis.connect();
      const author = await user('Ctl', true);
      const reader = await user('Fan');
      const post = await prisma.post.create({ data: { authorId: author.id, title: 'Control post', content: 'Public.' } });
      const watcher = await socketAs(reader.id, channelName.post(post.id));
      await relay({ OUTBOX_RELAY_NAME: 'relay-control' });

      const rolledBack = prisma.$transaction(async (tx) => {
        await publishPostLiked(tx, { postId: post.id, userId: reader.id, likesCount: 99, version: 99 });
        await announceSubscriptionChange(tx, 'subscription_cancelled', reader.id, 'rolled-back');
        throw new Error('the change failed');
      });
      await rolledBack.then(
        () => expect.fail('the transaction should have failed'),
        (error: Error) => expect(error.message).to.equal('the change failed'),
      );
      await prisma.$transaction(async (tx) => {
        await announceSubscriptionChange(tx, 'subscription_cancelled', reader.id, author.id);
        await enqueue(tx, channelName.post(post.id), 'post_unliked', { postId: post.id, userId: reader.id, likesCount: 0, version: 1 });
      });
      const message = await recorder.next((m) => m.type === 'entitlement_changed');
      expect(message).to.deep.include({ cause: 'subscription_cancelled', subjects: [{ kind: 'subscription', subscriberId: reader.id, creatorId: author.id }] });
      const unliked = await watcher.next((f) => f.type === 'post_unliked');
      expect(unliked.data).to.deep.equal({ postId: post.id, userId: reader.id, likesCount: 0, version: 1 });
      expect(recorder.messages, 'only the committed one').to.have.length(1);
      expect(postEvents(watcher).map((f) => f.type), 'the rolled-back like never left').to.deep.equal(['post_unliked']);
      expect(await redis.exists(`${prefix}history:{$control}:meta`, `${prefix}history:{$control}:stream`)).to.equal(0);
      // An event that does not match the protocol is refused at enqueue time: no row.
      const before = (await outboxRows()).length;
      const accepted = await prisma.$transaction((tx) => enqueue(tx, channelName.post(post.id), 'post_liked', { postId: post.id } as never));
      expect(accepted).to.equal(false);
      expect(await outboxRows()).to.have.length(before);
    } finally {
      await recorder.stop();
      redis.disconnect();
    }
  });
});
