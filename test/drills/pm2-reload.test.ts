/**
 * Fault drill: `pm2 reload fonana-ws` with clients connected and a steady publisher. The server
 * runs compiled, from the project's PM2 ecosystem file (`--only fonana-ws`, two processes in cluster mode on
 * one port, the test run's Redis with a prefix of its own), under a PM2 daemon with a temp
 * PM2_HOME that `pm2 kill` stops at the end. Each process is replaced in turn; clients closed
 * with 1001 reconnect with jittered backoff and subscribe with `since`: every event comes back
 * (`recovered: true`), in order, once. Prints the counts and the recovery latency.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { buildServer, type ServerBuild } from '../ops/support/build.ts';
import { ecosystemFile } from '../ops/support/paths.ts';
import { isAlive, Pm2 } from '../ops/support/pm2.ts';
import { health } from '../ops/support/publish.ts';
import { until } from '../ops/support/wait.ts';
import { freePort } from '../support/ports.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { DrillClient } from './support/drill-client.ts';
import { account, describeLost, recoveryLatencies, report, settled, summarize, totals } from './support/ledger.ts';
import { SteadyPublisher, sleep } from './support/publisher.ts';

const INSTANCES = 2;
const CLIENTS = 16;
const USERS = 4;

describe('drill: pm2 reload with clients connected', function () {
  this.timeout(90_000);

  let build: ServerBuild | undefined;
  let pm2: Pm2 | undefined;
  let logDir: string | undefined;
  let fixtures: Fixtures;
  let publisher: SteadyPublisher | undefined;
  let httpUrl: string;
  let wsUrl: string;
  let prefix: string;
  const clients: DrillClient[] = [];

  before(async function () {
    this.timeout(180_000);
    build = await buildServer();
    logDir = await mkdtemp(path.join(tmpdir(), 'drill-pm2-logs-'));
    const port = await freePort();
    httpUrl = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/ws`;
    prefix = testRedisPrefix(`drill-pm2-${randomBytes(3).toString('hex')}:`);
    fixtures = new Fixtures();
    pm2 = await Pm2.create({
      WS_INSTANCES: String(INSTANCES),
      WS_PORT: String(port),
      WS_HOST: '127.0.0.1',
      // Each process's own monitoring listener: ports of this run (the default is fixed).
      METRICS_PORT: String(await freePortPair()),
      // Required with NODE_ENV=production, which the ecosystem file sets.
      ALLOWED_ORIGINS: 'http://127.0.0.1',
      WS_DIST_DIR: build.distDir,
      LOG_DIR: logDir,
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: prefix,
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      SHUTDOWN_TIMEOUT_MS: '2000',
      CONNECT_RATE_PER_IP: '1000',
      CONNECT_BURST_PER_IP: '1000',
      LOG_LEVEL: 'info',
    });
    await pm2.run(['start', ecosystemFile, '--only', 'fonana-ws']);
    const nodeIds = new Set<unknown>();
    await until('both processes to answer /health', async () => {
      const answer = await health(httpUrl);
      if (answer?.status === 200 && answer.body.status === 'ok') nodeIds.add(answer.body.nodeId);
      return nodeIds.size === INSTANCES;
    });
  });

  after(async function () {
    this.timeout(60_000);
    for (const client of clients) client.stop();
    await publisher?.close();
    await pm2?.kill();
    await fixtures?.close();
    await build?.remove();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it('clients reconnect to the new processes and recover every event: recovered true, in order, once', async function () {
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => fixtures.user({ name: `pm2drill${i}` })));
    const tokens = await Promise.all(users.map((u) => mintSessionToken(u.id)));
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const client = new DrillClient({ urls: [wsUrl], token: tokens[i % USERS]!, channels: [channel], name: `c${i}`, backoff: { baseMs: 250, capMs: 2_000 } });
        clients.push(client);
        await client.start();
      }),
    );

    publisher = new SteadyPublisher({ redisUrl: testRedisUrl(), prefix, channel, postId: post.id, rate: 20, idPrefix: `pm2-${randomBytes(3).toString('hex')}` });
    await publisher.ready();
    publisher.start();
    await sleep(1_500);

    const before = (await pm2!.list()).filter((p) => p.name === 'fonana-ws');
    const reloadAt = Date.now();
    publisher.phase = 'reload';
    const { ms } = await pm2!.run(['reload', 'fonana-ws']);
    await until('old processes to exit', async () => before.every((p) => !isAlive(p.pid)));
    publisher.phase = 'after';
    await sleep(1_500);
    await publisher.stop();

    const deadline = Date.now() + 20_000;
    while (!clients.every((c) => c.allSubscribed && settled(c, channel, publisher!.published))) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }

    const after = (await pm2!.list()).filter((p) => p.name === 'fonana-ws');
    const accounts = clients.map((c) => account(c, channel, publisher!.published));
    const sum = totals(accounts, publisher.published.length);
    const flags = clients.flatMap((c) => c.reconnects.flatMap((r) => r.recovered));
    report(`pm2 reload fonana-ws (${INSTANCES} processes, cluster mode)`, {
      'published (acked)': `${sum.published} (${publisher.published.filter((e) => e.phase === 'reload').length} during the reload)`,
      'pm2 reload': `${ms} ms; pids ${before.map((p) => p.pid).join(',')} → ${after.map((p) => p.pid).join(',')}`,
      'delivered': `${sum.deliveries} of ${sum.expected}`,
      'reconnects': `${clients.reduce((n, c) => n + c.reconnects.length, 0)} (failed attempts ${clients.reduce((n, c) => n + c.failedAttempts, 0)}); close codes ${[...new Set(clients.flatMap((c) => c.closeCodes))].join(',')}`,
      'recovered: true': `${flags.filter(Boolean).length} of ${flags.length}`,
      'replayed per reconnect': summarize(clients.flatMap((c) => c.reconnects.map((r) => r.replayed)), 'events'),
      'reloads': sum.reloads,
      'lost': sum.lost,
      'duplicates after dedup': sum.duplicatesAfterDedup,
      'raw duplicates dropped': sum.rawDuplicates,
      'out of order': sum.outOfOrder,
      'position violations': sum.violations,
      'recovery latency (reconnect → last recovered event)': summarize(recoveryLatencies(clients)),
      'time to recover (reload start → last recovered event)': summarize(clients.flatMap((c) => c.reconnects.filter((r) => r.recoveredAt).map((r) => r.recoveredAt! - reloadAt))),
    });

    expect(after.map((p) => p.status)).to.deep.equal(Array(INSTANCES).fill('online'));
    expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
    expect(sum.deliveries, 'every event to every client').to.equal(sum.expected);
    expect(sum.reloads, 'reloads (recovered:false)').to.equal(0);
    expect(sum.duplicatesAfterDedup, 'applied twice').to.equal(0);
    expect(sum.outOfOrder, 'out of order').to.equal(0);
    expect(sum.violations, 'position violations').to.equal(0);
    for (const client of clients) {
      expect(client.reconnects, `${client.name} reconnects`).to.have.length.at.least(1);
      expect(client.closeCodes.every((code) => code === 1001), `${client.name} close codes ${client.closeCodes.join(',')}`).to.equal(true);
      expect(client.reconnects.flatMap((r) => r.recovered).every(Boolean), `${client.name}: recovered flags`).to.equal(true);
      expect(client.channel(channel).applied.flatMap((a) => (a.seq === undefined ? [] : [a.seq])), `${client.name}: applied sequence`).to.deep.equal(publisher.published.map((e) => e.seq));
    }
  });
});

/** A free port P with P + 1 free too (METRICS_PORT + NODE_APP_INSTANCE for two processes). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65_000 && (await isFree(port + 1))) return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
