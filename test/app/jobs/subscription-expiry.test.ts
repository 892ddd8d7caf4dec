/**
 * The subscription-expiry job (lib/jobs/subscription-expiry.ts) against the real database, the
 * real WebSocket server (Redis broker) and an outbox relay: only ACTIVE rows past `expiresAt`
 * become EXPIRED (in batches), and a subscriber whose socket reads a locked post loses it live
 * (`unsubscribed`, reason forbidden) while a subscriber still entitled keeps receiving events.
 *
 * The due subscription's `expiresAt` is moved into the past AFTER its socket subscribed, so the
 * socket's own grant deadline (set from the old `expiresAt`, an hour away) cannot be what cuts
 * it: only the job's `subscription_expired` announcement can. Last, the relay process runs the
 * job by itself (SCHEDULED_JOBS on, a short interval), as `npm start` and PM2 run it.
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../../lib/db/prisma-client.ts';
import { Scheduler, type JobLog } from '../../../lib/jobs/scheduler.ts';
import { SUBSCRIPTION_EXPIRY_JOB, subscriptionExpiryJob } from '../../../lib/jobs/subscription-expiry.ts';
import { publishPostLiked } from '../../../lib/realtime.ts';
import { channelName } from '../../../websocket-server/src/protocol/index.ts';
import { TestClient, type Frame } from '../../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl } from '../../support/env.ts';
import { createUser } from '../support/auth-flow.ts';
import { startRelay, type RelayProcess } from '../support/outbox-relay.ts';

/** The scheduler's lines are not this test's output; errors still show. */
const log: JobLog = { debug() {}, info() {}, warn: (m, f) => console.error(m, f), error: (m, f) => console.error(m, f) };
const HOUR = 3_600_000;
const LIVE_MS = 2_000;
const isUnsubscribed = (channel: string) => (f: Frame) => f.type === 'unsubscribed' && f.channel === channel && !('id' in f);

describe('subscription-expiry job', function () {
  this.timeout(30_000);
  let prisma: PrismaClient;
  let ws: ServerProcess;
  let relay: RelayProcess | undefined;
  let prefix: string;
  const clients: TestClient[] = [];
  const schedulers: Scheduler[] = [];

  before(async function () {
    this.timeout(60_000);
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 3 });
    prefix = testRedisPrefix('expiry:');
    ws = await startServer({ env: { REDIS_CHANNEL_PREFIX: prefix, LOG_LEVEL: 'info' } });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(`      server log:\n${ws?.log().slice(-2500)}\n      relay log:\n${relay?.log().slice(-2500)}`);
    for (const client of clients.splice(0)) client.close();
    await Promise.all(schedulers.splice(0).map((s) => s.stop()));
    await relay?.stop();
    relay = undefined;
  });
  after(async function () {
    this.timeout(20_000);
    await ws?.stop();
    await prisma?.$disconnect();
  });

  async function subscriber(creatorId: string, status: 'ACTIVE' | 'CANCELLED', expiresAt: Date | null) {
    const user = await createUser(prisma);
    const subscription = await prisma.subscription.create({ data: { subscriberId: user.id, creatorId, tier: 'BASIC', status, expiresAt } });
    return { user, subscription };
  }

  async function socketOf(userId: string, ...channels: string[]) {
    const client = await TestClient.connect(ws.url, { token: await mintSessionToken(userId), via: 'cookie' });
    clients.push(client);
    for (const channel of channels) await client.mustSubscribe(channel);
    return client;
  }

  it('expires only past-due ACTIVE rows, in batches, and the due subscriber’s socket loses the locked post live', async () => {
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix, SCHEDULED_JOBS: 'off' });
    const creator = await createUser(prisma, { isCreator: true });
    const post = await prisma.post.create({ data: { authorId: creator.id, title: 'Members', content: 'only', isLocked: true } });
    const channel = channelName.post(post.id);

    const due = await subscriber(creator.id, 'ACTIVE', new Date(Date.now() + HOUR));
    const staying = await subscriber(creator.id, 'ACTIVE', new Date(Date.now() + HOUR));
    const dueSocket = await socketOf(due.user.id, channel);
    const stayingSocket = await socketOf(staying.user.id, channel);
    // Now it is past due (the socket's grant still says "an hour"): only the job can tell it.
    await prisma.subscription.update({ where: { id: due.subscription.id }, data: { expiresAt: new Date(Date.now() - 1_000) } });

    const otherDue = [];
    for (let i = 0; i < 4; i++) otherDue.push((await subscriber(creator.id, 'ACTIVE', new Date(Date.now() - (i + 1) * HOUR))).subscription);
    const untouched = [
      (await subscriber(creator.id, 'ACTIVE', null)).subscription, // never expires
      (await subscriber(creator.id, 'CANCELLED', new Date(Date.now() - HOUR))).subscription, // already ended otherwise
      staying.subscription,
    ];

    const scheduler = new Scheduler({ databaseUrl: testDatabaseUrl(), log, jitter: 0, jobs: [subscriptionExpiryJob({ prisma, batchSize: 2 })] });
    schedulers.push(scheduler);
    const cut = dueSocket.next(isUnsubscribed(channel), LIVE_MS + 3_000);
    const started = performance.now();
    const result = await scheduler.runNow(SUBSCRIPTION_EXPIRY_JOB);
    expect(result.status).to.equal('ran');
    const outcome = (result as { outcome: Record<string, number> }).outcome;
    // Other suites of a full run may have left due rows of their own in this database.
    expect(outcome.expired, 'at least the 5 due rows of this test').to.be.at.least(5);
    expect(outcome.batches, 'by 2 rows a transaction').to.equal(Math.ceil(outcome.expired! / 2));
    expect(await cut).to.include({ reason: 'forbidden' });
    console.log(`      job run → unsubscribed on the due subscriber's socket: ${(performance.now() - started).toFixed(0)} ms`);

    const statusOf = async (ids: string[]) =>
      (await prisma.subscription.findMany({ where: { id: { in: ids } }, select: { id: true, status: true } })).map((r) => r.status);
    expect(await statusOf([due.subscription.id, ...otherDue.map((s) => s.id)])).to.deep.equal(Array(5).fill('EXPIRED'));
    expect((await prisma.subscription.findMany({ where: { id: { in: untouched.map((s) => s.id) } } })).map((s) => [s.id, s.status]).sort()).to.deep.equal(
      untouched.map((s) => [s.id, s.status]).sort(),
    );

    // The entitled one still receives the post's events; the expired one got nothing after the cut.
    await prisma.$transaction((tx) => publishPostLiked(tx, { postId: post.id, userId: creator.id, likesCount: 1, version: 1 }));
    await stayingSocket.next((f) => f.type === 'post_liked' && f.channel === channel, LIVE_MS + 3_000);
    expect((await dueSocket.request({ type: 'ping' })).type).to.equal('pong');
    const cutAt = dueSocket.frames.findIndex(isUnsubscribed(channel));
    expect(dueSocket.frames.slice(cutAt + 1).filter((f) => f.channel === channel)).to.deep.equal([]);
    expect(stayingSocket.frames.filter(isUnsubscribed(channel))).to.deep.equal([]);
    expect(await dueSocket.subscribe(channel), 'and may not come back').to.include({ type: 'error', code: 'forbidden' });

    // Nothing left to do: a second run changes nothing.
    expect(await scheduler.runNow(SUBSCRIPTION_EXPIRY_JOB)).to.deep.include({ status: 'ran', outcome: { expired: 0, batches: 0 } });
  });

  it('runs inside the outbox relay process by itself (SCHEDULED_JOBS on, SUBSCRIPTION_EXPIRY_INTERVAL_MS)', async () => {
    const creator = await createUser(prisma, { isCreator: true });
    const { subscription } = await subscriber(creator.id, 'ACTIVE', new Date(Date.now() - 1_000));
    relay = await startRelay({
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      SCHEDULED_JOBS: 'on',
      SUBSCRIPTION_EXPIRY_INTERVAL_MS: '200',
    });
    const deadline = Date.now() + 10_000;
    while ((await prisma.subscription.findUniqueOrThrow({ where: { id: subscription.id } })).status !== 'EXPIRED') {
      expect(Date.now(), `not expired by the relay within 10 s:\n${relay.log().slice(-2000)}`).to.be.below(deadline);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(relay.log()).to.contain('"job scheduler started"');
    expect(relay.log()).to.match(/"msg":"job ran".*"job":"subscription-expiry".*"expired":1/);
    const exit = await relay.stop();
    relay = undefined;
    expect(exit, 'stops cleanly with its jobs').to.deep.equal({ code: 0, signal: null });
  });
});
