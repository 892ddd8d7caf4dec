/**
 * The scaling path's second step, measured: two WebSocket nodes behind the shipped nginx site
 * (nginx/sites-available/fonana.conf, upstream `fonana_ws` with `least_conn`, the /ws location of
 * nginx/snippets/fonana-proxy.conf) against the same two nodes reached directly, half of the
 * clients on each, in one run. Debian's nginx runs in a temporary prefix (test/ops/support/nginx.ts)
 * with only its worker_connections raised; the nodes are real server processes on one Redis and a
 * scratch PostgreSQL database that the run creates and drops.
 *
 *   npx tsx bench/nginx-nodes.ts [--clients 4000] [--rate 1000] [--seconds 15] [--workers 2] [--tag T]
 *
 * Each phase (direct, then through nginx): --clients authenticated clients connect at
 * --connect-rate per second, each subscribing its own notifications_ channel; then notifications
 * to random users at --rate per second for --seconds. Every client must get exactly its events.
 * Prints, per phase: connections per node (how least_conn split them), connect CPU per
 * connection of the nodes and of nginx, latency p50/p99, CPU per delivery per node and of nginx;
 * and the nginx ÷ direct ratios. Writes bench/results/nginx-nodes-<date>[-tag].json.
 * Not part of npm test. See README.md, "Scaling path".
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { NginxPrefix, renderSite, shippedSite } from '../test/ops/support/nginx.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../test/support/env.ts';
import { publishWithHistory } from '../websocket-server/src/broker/history-script.ts';
import { processCpuSeconds, startServer, type RunningServer } from './compare/servers.ts';
import { Histogram } from './compare/support/histogram.ts';
import { Fleet } from './compare/workers.ts';
import { createUsersWithTokens, deleteKeysUnder } from './support/bench-run.ts';

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '4000' },
    'connect-rate': { type: 'string', default: '250' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '15' },
    workers: { type: 'string', default: '2' },
    tag: { type: 'string', default: '' },
  },
});
const CLIENTS = Number(flags.clients);
const CONNECT_RATE = Number(flags['connect-rate']);
const RATE = Number(flags.rate);
const SECONDS = Number(flags.seconds);
const WORKERS = Math.max(2, Number(flags.workers));

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const started = new Date();
const stamp = started.toISOString().slice(0, 16).replace(':', '');
const runDir = `${RESULTS_DIR}runs/${stamp}-nginx${flags.tag ? `-${flags.tag}` : ''}/`;
mkdirSync(runDir, { recursive: true });
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `ngx:${randomBytes(4).toString('hex')}:`;
const PREFIX = `${REDIS_PREFIX}ws:`;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stdout.write(`${line}\n`);

/** utime + stime of a process, in seconds (0 once it is gone). */
function processCpu(pid: number): number {
  try {
    return processCpuSeconds(pid);
  } catch {
    return 0;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** nginx's master and its workers (the master's children), summed. */
function nginxCpu(prefix: NginxPrefix): number {
  const master = Number(readFileSync(path.join(prefix.dir, 'nginx.pid'), 'utf8').trim());
  const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [master, ...children].reduce((sum, pid) => sum + processCpu(pid), 0);
}

async function openConnections(server: RunningServer): Promise<number> {
  const text = await (await fetch(`${server.url.replace('ws://', 'http://')}/metrics`)).text();
  return Number(/^ws_connections (\d+)/m.exec(text)?.[1] ?? NaN);
}

log(`bench/nginx-nodes: ${CLIENTS} clients, ${RATE} notifications/s for ${SECONDS} s, 2 nodes, ${WORKERS} client processes; ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`);

const database = await createScratchDatabase();
process.env.TEST_DATABASE_URL = database.url;
const { Fixtures } = await import('../websocket-server/test/support/fixtures.ts');
const { mintSessionToken } = await import('../websocket-server/test/support/tokens.ts');
const fixtures = new Fixtures();
const redis = new Redis(REDIS_URL);
const fleet = new Fleet(WORKERS);
const nodes: RunningServer[] = [];
let nginx: NginxPrefix | undefined;
let cleaning: Promise<void> | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}

interface Phase {
  connectionsPerNode: number[];
  connectSeconds: number;
  connectCpuUsPerConnection: { nodes: number; nginx: number };
  delivered: number;
  expected: number;
  complete: boolean;
  latencyMs: { p50: number; p99: number };
  cpuUsPerDelivery: { nodes: number; nginx: number };
  nodeCpuSeconds: number[];
}
const phases: Partial<Record<'direct' | 'nginx', Phase>> = {};
const failures: string[] = [];

try {
  await fleet.ready();
  const { userIds, tokens } = await createUsersWithTokens(fixtures, mintSessionToken, CLIENTS, 'ngx', randomBytes(4).toString('hex'));
  const conns = userIds.map((id, i) => ({ channel: `notifications_${id}`, token: tokens[i]! }));

  for (const name of ['a', 'b']) {
    nodes.push(
      await startServer({
        target: 'project',
        logPath: `${runDir}node-${name}.log`,
        env: {
          WS_PORT: '0',
          WS_HOST: '127.0.0.1',
          DATABASE_URL: database.url,
          NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
          WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
          REDIS_URL,
          REDIS_CHANNEL_PREFIX: PREFIX,
          LOG_LEVEL: 'info',
          // Behind nginx every connection comes from 127.0.0.1: the per-address limits would
          // see one client (the X-Forwarded-For of a trusted proxy is not configured here).
          MAX_CONNECTIONS_PER_USER: '100000',
          MAX_PENDING_HANDSHAKES: '2000',
          CONNECT_RATE_PER_IP: '1000000',
          CONNECT_BURST_PER_IP: '1000000',
          NODE_ENV: undefined,
        },
      }),
    );
  }
  const nginxPort = await freePort();
  const upstreams = nodes.map((node) => new URL(node.url).host);
  nginx = await NginxPrefix.create(renderSite(readFileSync(shippedSite, 'utf8'), { listenPort: nginxPort, appServers: ['127.0.0.1:9'], wsServers: upstreams }));
  // The harness's main config allows 1024 connections per worker; each client is two here (its
  // own and the upstream one), and so two file descriptors: past ~9,000 clients a 20,000 fd
  // limit (this machine's, hard) is the bound, not nginx.
  const conf = readFileSync(nginx.conf, 'utf8');
  if (!/worker_connections 1024;/.test(conf)) throw new Error('nginx/test/nginx.conf no longer sets worker_connections 1024');
  writeFileSync(nginx.conf, `worker_rlimit_nofile ${2 * CLIENTS + 2048};\n${conf.replace('worker_connections 1024;', `worker_connections ${2 * CLIENTS + 1024};`)}`);
  await nginx.start(nginxPort);
  log(`nodes ${upstreams.join(', ')}; nginx on 127.0.0.1:${nginxPort} (least_conn over both)`);

  const front = nginx;
  let seq = 0;
  for (const mode of ['direct', 'nginx'] as const) {
    const urlOf = mode === 'nginx' ? () => `ws://127.0.0.1:${nginxPort}/ws` : (w: number) => `${nodes[w % 2]!.url}/ws`;
    // Each phase from its own source addresses.
    const addressOf = (w: number) => `127.0.0.${2 + (mode === 'nginx' ? WORKERS : 0) + w}`;
    const nodeCpu0 = nodes.map((n) => n.cpuSeconds());
    const nginxCpu0 = nginxCpu(front);
    const reply = await fleet.connect('project', urlOf, conns, 'notification', addressOf, { ratePerSecond: CONNECT_RATE, concurrency: 200 });
    if (reply.failed > 0) failures.push(`${mode}: ${reply.failed} of ${CLIENTS} connections failed: ${JSON.stringify(reply.errors)}`);
    const connectCpu = nodes.map((n, i) => n.cpuSeconds() - nodeCpu0[i]!);
    const connectNginxCpu = nginxCpu(front) - nginxCpu0;
    const perNode = await Promise.all(nodes.map(openConnections));

    await sleep(1000);
    await fleet.reset(10);
    const expected = new Array<number>(CLIENTS).fill(0);
    const total = Math.round(RATE * SECONDS);
    const cpu0 = nodes.map((n) => n.cpuSeconds());
    const ngx0 = nginxCpu(front);
    const t0 = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000) + 1);
      for (; sent < due; sent++) {
        const i = Math.floor(Math.random() * CLIENTS);
        expected[i]!++;
        const s = now();
        const q = ++seq;
        const data = { notification: { id: `ngx-n-${q}`, type: 'LIKE', title: 'Someone liked your post', message: 'A benchmark notification', isRead: false, createdAt: new Date(s).toISOString() }, s, q };
        void publishWithHistory(redis, PREFIX, conns[i]!.channel, JSON.stringify({ type: 'notification', data }));
      }
      await sleep(2);
    }
    await fleet.awaitTotal(total);
    const cpu = nodes.map((n, i) => n.cpuSeconds() - cpu0[i]!);
    const ngxCpu = nginxCpu(front) - ngx0;
    const collected = await fleet.collect();
    const wrong = collected.counts.filter((count, j) => count !== expected[j]).length;
    if (wrong > 0) failures.push(`${mode}: ${wrong} of ${CLIENTS} clients did not get exactly their notifications`);
    const histogram = new Histogram();
    for (const pairs of collected.histograms) histogram.merge(pairs);
    const delivered = collected.counts.reduce((a, b) => a + b, 0);
    const p: Phase = {
      connectionsPerNode: perNode,
      connectSeconds: reply.seconds,
      connectCpuUsPerConnection: { nodes: (connectCpu.reduce((a, b) => a + b, 0) * 1e6) / CLIENTS, nginx: (connectNginxCpu * 1e6) / CLIENTS },
      delivered,
      expected: total,
      complete: wrong === 0 && reply.failed === 0,
      latencyMs: { p50: histogram.percentile(50), p99: histogram.percentile(99) },
      cpuUsPerDelivery: {
        nodes: (cpu.reduce((a, b) => a + b, 0) * 1e6) / Math.max(1, delivered),
        nginx: (ngxCpu * 1e6) / Math.max(1, delivered),
      },
      nodeCpuSeconds: cpu,
    };
    phases[mode] = p;
    log(
      `[${mode}] connections per node ${perNode.join(' / ')}; connect ${reply.seconds.toFixed(1)} s, CPU per connection nodes ${p.connectCpuUsPerConnection.nodes.toFixed(0)} µs + nginx ${p.connectCpuUsPerConnection.nginx.toFixed(0)} µs; ` +
        `${delivered}/${total} delivered; latency p50 ${p.latencyMs.p50.toFixed(2)} ms p99 ${p.latencyMs.p99.toFixed(2)} ms; CPU per delivery nodes ${p.cpuUsPerDelivery.nodes.toFixed(1)} µs (${cpu.map((c) => c.toFixed(2)).join(' / ')} s) + nginx ${p.cpuUsPerDelivery.nginx.toFixed(1)} µs`,
    );
    await fleet.closeAll();
    // Both nodes have let go of every socket before the next phase connects.
    for (let i = 0; i < 200 && (await Promise.all(nodes.map(openConnections))).some((n) => n > 0); i++) await sleep(100);
  }

  const [d, n] = [phases.direct!, phases.nginx!];
  const ratios = {
    latencyP50: n.latencyMs.p50 / d.latencyMs.p50,
    latencyP99: n.latencyMs.p99 / d.latencyMs.p99,
    nodeCpuPerDelivery: n.cpuUsPerDelivery.nodes / d.cpuUsPerDelivery.nodes,
    nodeCpuPerConnection: n.connectCpuUsPerConnection.nodes / d.connectCpuUsPerConnection.nodes,
  };
  log(`nginx ÷ direct: latency p50 ${ratios.latencyP50.toFixed(2)}×, p99 ${ratios.latencyP99.toFixed(2)}×; node CPU per delivery ${ratios.nodeCpuPerDelivery.toFixed(2)}×, per connection ${ratios.nodeCpuPerConnection.toFixed(2)}×`);
  log(failures.length === 0 ? 'every expected delivery arrived, at every client' : `FAILURES:\n  ${failures.join('\n  ')}`);
  const out = `${RESULTS_DIR}nginx-nodes-${started.toISOString().slice(0, 10)}${flags.tag ? `-${flags.tag}` : ''}.json`;
  writeFileSync(
    out,
    `${JSON.stringify({ startedAt: started.toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version }, sizes: { clients: CLIENTS, connectRate: CONNECT_RATE, rate: RATE, seconds: SECONDS, workers: WORKERS }, phases, ratios, failures }, null, 2)}\n`,
  );
  log(`wrote ${out}`);
} finally {
  await cleanUp();
}
if (failures.length > 0) process.exitCode = 1;

async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    fleet.kill();
    await Promise.all(nodes.map((node) => node.stop().catch(() => {})));
    await nginx?.stop().catch(() => {});
    await deleteKeysUnder(redis, REDIS_PREFIX);
    redis.disconnect();
    await fixtures.close();
    await database.drop();
  })();
  return cleaning;
}
