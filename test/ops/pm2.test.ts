/**
 * ecosystem.config.js under a real PM2 daemon (its own PM2_HOME in a temp dir): fonana-ws
 * compiled to JavaScript, two processes in cluster mode on one port, each also scraped on its
 * own METRICS_PORT + n, events fanned out through Redis, the outbox relay beside them, and a
 * `pm2 reload` that clients survive with one reconnect. `pm2 kill` at the end leaves nothing
 * running.
 *
 * The Next.js app (`fonana`) runs from the end-to-end tests' build (test/e2e/support, built
 * once per test run into .next/e2e and reused while fresh), selected with NEXT_DIST_DIR.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { E2E_DIST_DIR, ensureAppBuilt } from '../e2e/support/next-app.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { buildServer, type ServerBuild } from './support/build.ts';
import { isAlive, Pm2 } from './support/pm2.ts';
import { freePort } from '../support/ports.ts';
import { health, publishFeedUpdate } from './support/publish.ts';
import { ReconnectingClient } from './support/reconnecting-client.ts';
import { until } from './support/wait.ts';

const INSTANCES = 2;

describe('PM2 (ecosystem.config.js)', function () {
  this.timeout(120_000);

  let build: ServerBuild;
  let pm2: Pm2;
  let logDir: string;
  let port: number;
  let metricsPort: number;
  let httpUrl: string;
  let wsUrl: string;
  let appUrl: string;
  let fixtures: Fixtures;
  let token: string;
  let channel: string;
  const clients: Array<TestClient | ReconnectingClient> = [];

  before(async function () {
    this.timeout(300_000);
    // Both at once; the server build is kept (and removed in `after`) even when the app's fails.
    const building = buildServer();
    building.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    try {
      await ensureAppBuilt();
    } finally {
      build = await building;
    }
    logDir = await mkdtemp(path.join(tmpdir(), 'fonana-logs-'));
    port = await freePort();
    metricsPort = await freePortPair();
    const appPort = await freePort();
    httpUrl = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/ws`;
    appUrl = `http://127.0.0.1:${appPort}`;
    fixtures = new Fixtures();
    const user = await fixtures.user({ name: 'pm2' });
    token = await mintSessionToken(user.id);
    channel = `feed_${user.id}`;
    pm2 = await Pm2.create({
      WS_INSTANCES: String(INSTANCES),
      WS_PORT: String(port),
      WS_HOST: '127.0.0.1',
      // On by default (9610); a port of this run's own, so concurrent runs never collide.
      METRICS_PORT: String(metricsPort),
      // Required with NODE_ENV=production (ecosystem.config.js sets it): the app's origin.
      ALLOWED_ORIGINS: appUrl,
      WS_DIST_DIR: build.distDir,
      LOG_DIR: logDir,
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('pm2:'),
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      // The app: its port, its public URL, its build, and where it publishes.
      PORT: String(appPort),
      NEXTAUTH_URL: appUrl,
      NEXT_DIST_DIR: E2E_DIST_DIR,
      WS_PUBLISH_URL: httpUrl,
      // Short drains keep the reload quick; kill_timeout follows from it.
      SHUTDOWN_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'debug',
    });
  });

  after(async function () {
    for (const client of clients) client instanceof ReconnectingClient ? client.stop() : client.close();
    await pm2?.kill();
    await fixtures?.close();
    await build?.remove();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it(`pm2 start ecosystem.config.js brings up every app healthy: fonana, fonana-outbox, and fonana-ws compiled in cluster mode (${INSTANCES} processes, one port)`, async function () {
    const { stdout } = await pm2.run(['start', 'ecosystem.config.js']);
    expect(stdout).to.match(/waiting for app to be ready/);
    const processes = await pm2.list();
    const ws = processes.filter((p) => p.name === 'fonana-ws');
    expect(ws).to.have.length(INSTANCES);
    for (const p of ws) {
      expect(p).to.include({ status: 'online', execMode: 'cluster_mode' });
      // Plain JavaScript run by node: no TypeScript compiler at run time.
      expect(p.execPath).to.equal(build.entry);
    }
    expect(processes.filter((p) => p.name === 'fonana').map((p) => `${p.status}/${p.execMode}`)).to.deep.equal(['online/fork_mode']);
    expect(processes.filter((p) => p.name === 'fonana-outbox').map((p) => `${p.status}/${p.execMode}`)).to.deep.equal(['online/fork_mode']);

    // Each fresh connection goes to the next process (round robin): both answer /health.
    const nodeIds = new Set<unknown>();
    await until('both processes to answer /health', async () => {
      const answer = await health(httpUrl);
      if (answer?.status === 200 && answer.body.status === 'ok') nodeIds.add(answer.body.nodeId);
      return nodeIds.size === INSTANCES;
    });
    // METRICS_PORT + n: process n on its own port, the same processes as behind the shared one.
    expect(new Set(await monitoredNodeIds())).to.deep.equal(nodeIds);
    // next start does not tell PM2 when it is ready: poll its health route.
    await until('the app to answer /api/health', async () => {
      const response = await fetch(`${appUrl}/api/health`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
      return response?.status === 200;
    }, 30_000);
  });

  it('fans an event out through Redis to clients on every process', async function () {
    const connected = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(wsUrl, { token })));
    clients.push(...connected);
    for (const client of connected) await client.mustSubscribe(channel);

    // Which process each client reached: the connectionId of its `connected` frame is the connId
    // of the 'connected' line that process logged, and every line carries the process's nodeId
    // (hostname:pid by default), so it names the PM2 process.
    const connectionIds = await Promise.all(connected.map(async (client) => String((await client.next((f) => f.type === 'connected')).connectionId)));
    const nodeIds = await until('a log line for every connection', async () => {
      const nodeOf = new Map<string, string>();
      const log = await readFile(path.join(logDir, 'fonana-ws.err.log'), 'utf8').catch(() => '');
      for (const line of log.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { message?: unknown; connId?: unknown; nodeId?: unknown };
          if (entry.message === 'connected' && typeof entry.connId === 'string' && typeof entry.nodeId === 'string') nodeOf.set(entry.connId, entry.nodeId);
        } catch {
          // A line still being written.
        }
      }
      return connectionIds.every((id) => nodeOf.has(id)) ? connectionIds.map((id) => nodeOf.get(id)!) : null;
    });
    const pidOf = (nodeId: string) => Number(nodeId.slice(nodeId.lastIndexOf(':') + 1));
    const wsPids = (await pm2.list()).filter((p) => p.name === 'fonana-ws').map((p) => p.pid);
    expect(wsPids).to.have.length(INSTANCES);
    // Both processes have clients: the event has to cross Redis to reach some of them.
    expect(new Set(nodeIds.map(pidOf)), `processes of the clients (nodeIds ${nodeIds.join(', ')})`).to.deep.equal(new Set(wsPids));

    const postId = await publishFeedUpdate(httpUrl, channel);
    for (const [i, client] of connected.entries()) {
      await client
        .next((f) => f.type === 'feed_update' && (f.data as { postId?: string }).postId === postId)
        .catch((error: Error) => {
          throw new Error(`client ${i}, connected to ${nodeIds[i]}: ${error.message}`);
        });
    }
    for (const client of connected) client.close();
  });

  it('pm2 reload fonana-ws: clients are closed with 1001, reconnect and receive the next event', async function () {
    const wsProcesses = async () => (await pm2.list()).filter((p) => p.name === 'fonana-ws');
    const before = await wsProcesses();
    const plain = await TestClient.connect(wsUrl, { token });
    clients.push(plain);
    const reconnecting = new ReconnectingClient(wsUrl, channel, { token });
    clients.push(reconnecting);
    await reconnecting.start();

    const { stdout, ms } = await pm2.run(['reload', 'fonana-ws']);
    expect(stdout).to.match(/fonana-ws/);

    // Every old process is gone (SIGINT → drained → exit 0) and new ones took their place.
    await until('old processes to exit', async () => before.every((p) => !isAlive(p.pid)));
    const goneAt = Date.now();
    const after = await wsProcesses();
    expect(after).to.have.length(INSTANCES);
    for (const p of after) {
      expect(p.status).to.equal('online');
      expect(before.map((b) => b.pid)).not.to.include(p.pid);
    }

    expect((await plain.closed).code, 'close code of a client of a stopped process').to.equal(1001);
    const client = await reconnecting.readySince(goneAt);
    expect(reconnecting.closeCodes.length).to.be.greaterThan(0);
    expect(reconnecting.closeCodes.every((code) => code === 1001), `close codes ${reconnecting.closeCodes.join(',')}`).to.equal(true);

    const postId = await publishFeedUpdate(httpUrl, channel);
    await client.next((f) => f.type === 'feed_update' && (f.data as { postId?: string }).postId === postId);
    // The new process n took over METRICS_PORT + n (shared through PM2's cluster master while
    // the old one drained): each port now names one of the new processes.
    const newNodeIds = await until('the monitoring ports to name the new processes', async () => {
      const ids = await monitoredNodeIds().catch(() => null);
      return ids && ids.every((id) => after.some((p) => id.endsWith(`:${p.pid}`))) && new Set(ids).size === INSTANCES ? ids : null;
    });
    expect(newNodeIds).to.have.length(INSTANCES);
    // Without the 'ready' message PM2 would wait listen_timeout (15 s) per process before
    // stopping the old one; with it a reload of 2 processes takes ~1.5 s here.
    expect(ms, 'pm2 reload duration').to.be.below(15_000);

    const log = await readFile(path.join(pm2.home, 'pm2.log'), 'utf8');
    expect(log).to.match(/exited with code \[0\] via signal \[SIGINT\]/);
  });

  it('writes each app’s logs to LOG_DIR, one pair of files for all instances', async function () {
    const out = await readFile(path.join(logDir, 'fonana-ws.out.log'), 'utf8').catch(() => '');
    const err = await readFile(path.join(logDir, 'fonana-ws.err.log'), 'utf8').catch(() => '');
    const nodeIds = new Set([...`${out}\n${err}`.matchAll(/"nodeId":"([^"]+)"/g)].map((m) => m[1]));
    // Two generations of two processes wrote into the same files.
    expect(nodeIds.size).to.be.at.least(INSTANCES * 2);
  });

  it('pm2 kill stops every process', async function () {
    const pids = (await pm2.list()).map((p) => p.pid);
    // fonana-ws × INSTANCES, fonana, fonana-outbox.
    expect(pids).to.have.length(INSTANCES + 2);
    await pm2.kill();
    await until('every app process to exit', async () => pids.every((pid) => !isAlive(pid)), 15_000);
    await until('the ports to be free', async () => (await health(httpUrl)) === null && (await fetch(appUrl).catch(() => null)) === null);
    expect(await health(`http://127.0.0.1:${metricsPort}`), 'the monitoring port').to.equal(null);
  });

  /** The nodeId of the process behind each monitoring port, METRICS_PORT + 0 … INSTANCES − 1;
   * its /metrics there is Prometheus text. */
  async function monitoredNodeIds(): Promise<string[]> {
    return Promise.all(
      Array.from({ length: INSTANCES }, async (_, n) => {
        const base = `http://127.0.0.1:${metricsPort + n}`;
        const answer = await health(base);
        if (answer?.status !== 200) throw new Error(`${base}/health answered ${answer?.status ?? 'nothing'}`);
        const metrics = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(2_000) });
        expect(metrics.status).to.equal(200);
        expect(await metrics.text()).to.match(/^ws_connections \d+$/m);
        return String(answer.body.nodeId);
      }),
    );
  }
});

/** A free port whose successor is free too (METRICS_PORT + 0 and + 1). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port + 1, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free && port < 65_535) return port;
  }
}
