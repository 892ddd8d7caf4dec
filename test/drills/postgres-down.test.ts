/**
 * Fault drill: PostgreSQL unreachable for 10 s. A PostgreSQL of the drill's own (initdb into a
 * temp dir, its own port, migrated with applyMigrations) is stopped under a running WebSocket
 * server with clients subscribed and a steady publisher (the test run's Redis, a prefix of its
 * own), then started again:
 *
 * - open sockets keep being served: every event still reaches every subscribed client, and
 *   pings are answered, the whole time;
 * - a new handshake fails fast, closed with 1013 (`retry_after_ms=` in the reason), for a user
 *   whose session the server has not cached (ACCESS_CACHE_TTL_MS: a user seen in the last 30 s
 *   may be let in from the cache; the drill prints what happened to one);
 * - once PostgreSQL is back, handshakes succeed again.
 *
 * Prints the counts, the handshake refusal times and the time from PostgreSQL's return to the
 * first successful handshake.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { applyMigrations } from '../../scripts/db/schema-engine.ts';
import { channelName, retryAfterFromReason } from '../../websocket-server/src/protocol/index.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testRedisPrefix, testRedisUrl } from '../support/env.ts';
import { DrillClient } from './support/drill-client.ts';
import { account, describeLost, report, settled, summarize, totals } from './support/ledger.ts';
import { OwnPostgres } from './support/own-postgres.ts';
import { SteadyPublisher, sleep } from './support/publisher.ts';

const CLIENTS = 8;
const OUTAGE_MS = 10_000;

describe('drill: PostgreSQL unreachable for 10 s', function () {
  this.timeout(60_000);

  let pg: OwnPostgres | undefined;
  let prisma: PrismaClient | undefined;
  let server: ServerProcess | undefined;
  let publisher: SteadyPublisher | undefined;
  let databaseUrl: string;
  let prefix: string;
  const clients: DrillClient[] = [];
  const probes: TestClient[] = [];

  before(async function () {
    this.timeout(60_000);
    pg = await OwnPostgres.start();
    databaseUrl = await pg.createDatabase('drill');
    await applyMigrations(databaseUrl);
    prisma = createPrismaClient(databaseUrl, { poolMax: 2 });
    prefix = testRedisPrefix(`drill-pg-${randomBytes(3).toString('hex')}:`);
    server = await startServer({
      env: {
        DATABASE_URL: databaseUrl,
        REDIS_CHANNEL_PREFIX: prefix,
        LOG_LEVEL: 'info',
        CONNECT_RATE_PER_IP: '1000',
        CONNECT_BURST_PER_IP: '1000',
      },
    });
  });

  after(async function () {
    this.timeout(30_000);
    for (const client of clients) client.stop();
    for (const probe of probes) probe.close();
    await publisher?.close();
    await server?.stop();
    await prisma?.$disconnect();
    await pg?.destroy();
  });

  const tag = () => randomBytes(4).toString('hex');

  it('open sockets keep getting events and pongs; new handshakes get 1013 at once; after it returns they work again', async function () {
    const creator = await prisma!.user.create({ data: { email: `creator-${tag()}@test.invalid`, name: 'Creator', passwordHash: 'x', isCreator: true } });
    const post = await prisma!.post.create({ data: { authorId: creator.id, title: 'Drill', content: 'Drill' } });
    const users = await Promise.all(
      Array.from({ length: 4 }, () => prisma!.user.create({ data: { email: `reader-${tag()}@test.invalid`, name: 'Reader', passwordHash: 'x' } })),
    );
    const tokens = await Promise.all(users.map((u) => mintSessionToken(u.id)));
    // One never-seen user per handshake attempt: nothing about them is in the server's cache.
    const strangers = await Promise.all(
      Array.from({ length: 30 }, async () => mintSessionToken((await prisma!.user.create({ data: { email: `probe-${tag()}@test.invalid`, name: 'Probe', passwordHash: 'x' } })).id)),
    );
    const channel = channelName.post(post.id);
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const client = new DrillClient({ urls: [server!.url], token: tokens[i % tokens.length]!, channels: [channel], name: `c${i}` });
        clients.push(client);
        await client.start();
      }),
    );
    publisher = new SteadyPublisher({ redisUrl: testRedisUrl(), prefix, channel, postId: post.id, rate: 20, idPrefix: `pg-${tag()}` });
    await publisher.ready();
    publisher.start();
    await sleep(1_000);

    await pg!.down('fast');
    const downAt = Date.now();
    publisher.phase = 'database down';
    const pongMs: number[] = [];
    const refusals: Array<{ code: number; ms: number; retryAfterMs: number | null }> = [];
    while (Date.now() - downAt < OUTAGE_MS) {
      // Every open socket answers a ping.
      await Promise.all(
        clients.map(async (client) => {
          const sent = Date.now();
          const reply = await client.request({ type: 'ping' }, 2_000);
          expect(reply.type, `${client.name} ping reply`).to.equal('pong');
          pongMs.push(Date.now() - sent);
        }),
      );
      // A new handshake is refused quickly with 1013.
      const started = Date.now();
      const probe = TestClient.open(server!.url, { token: strangers.pop()! });
      probes.push(probe);
      const closed = await Promise.race([probe.closed, sleep(8_000).then(() => null)]);
      expect(closed, `the new handshake was closed (frames ${JSON.stringify(probe.frames).slice(0, 300)})`).to.not.equal(null);
      refusals.push({ code: closed!.code, ms: Date.now() - started, retryAfterMs: retryAfterFromReason(closed!.reason) });
      await sleep(700);
    }
    // A user the server saw a moment ago (a reconnect during the outage): from the cache or 1013.
    const known = TestClient.open(server!.url, { token: tokens[0]! });
    probes.push(known);
    const knownOutcome = await Promise.race([
      known.next((f) => f.type === 'connected', 4_000).then(() => 'admitted (session from the cache)', () => 'no answer in 4 s'),
      known.closed.then((c) => `closed ${c.code}`),
    ]);
    known.close();
    const stillDelivered = publisher.published.filter((e) => e.phase === 'database down');

    await pg!.up();
    const upAt = Date.now();
    publisher.phase = 'after';
    // Handshakes work again (the first success after the return, retried every 100 ms).
    let firstOk = -1;
    let attemptsAfter = 0;
    while (Date.now() - upAt < 15_000) {
      attemptsAfter++;
      const probe = TestClient.open(server!.url, { token: strangers.pop()! });
      probes.push(probe);
      const outcome = await Promise.race([
        probe.next((f) => f.type === 'connected', 5_000).then(() => 'connected' as const, () => 'timeout' as const),
        probe.closed.then(() => 'closed' as const),
      ]);
      if (outcome === 'connected') {
        const reply = await probe.subscribe(channel);
        expect(reply.type, 'subscribe after the return').to.equal('subscribed');
        firstOk = Date.now() - upAt;
        probe.close();
        break;
      }
      await sleep(100);
    }
    await sleep(500);
    await publisher.stop();
    const deadline = Date.now() + 10_000;
    while (!clients.every((c) => settled(c, channel, publisher!.published))) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }

    const accounts = clients.map((c) => account(c, channel, publisher!.published));
    const sum = totals(accounts, publisher.published.length);
    const whileDown = accounts.map((a, i) => stillDelivered.filter((e) => clients[i]!.channel(channel).ids.has(e.id)).length);
    report('PostgreSQL stopped for 10 s under the server', {
      'published (acked)': `${sum.published} (${stillDelivered.length} while PostgreSQL was down)`,
      'delivered': `${sum.deliveries} of ${sum.expected}`,
      'delivered while down, per client': summarize(whileDown, 'events'),
      'lost': sum.lost,
      'reconnects / close codes': `${clients.reduce((n, c) => n + c.reconnects.length, 0)} / ${clients.flatMap((c) => c.closeCodes).join(',') || 'none'}`,
      'pong round trip while down': summarize(pongMs),
      'handshakes while down': `${refusals.length}, close codes ${[...new Set(refusals.map((r) => r.code))].join(',')}, retry_after_ms ${[...new Set(refusals.map((r) => r.retryAfterMs))].join(',')}`,
      'handshake refusal time': summarize(refusals.map((r) => r.ms)),
      'a user connected 10 s before, reconnecting while down': knownOutcome,
      'PostgreSQL back → first good handshake': `${firstOk} ms (${attemptsAfter} attempts)`,
    });

    expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
    expect(sum.deliveries, 'every event to every open socket').to.equal(sum.expected);
    expect(whileDown.every((n) => n === stillDelivered.length), 'events published while PostgreSQL was down, delivered').to.equal(true);
    expect(stillDelivered.length).to.be.greaterThan(100);
    expect(clients.flatMap((c) => c.closeCodes), 'open sockets closed').to.deep.equal([]);
    expect(refusals.length).to.be.at.least(5);
    expect(refusals.map((r) => r.code), 'close codes of new handshakes while down').to.satisfy((codes: number[]) => codes.every((c) => c === 1013));
    expect(Math.max(...refusals.map((r) => r.ms)), 'slowest refusal (ms)').to.be.below(3_500);
    expect(refusals.every((r) => r.retryAfterMs !== null), 'retry_after_ms in every 1013 reason').to.equal(true);
    expect(firstOk, 'ms from PostgreSQL back to a working handshake').to.be.within(0, 10_000);
  });
});
