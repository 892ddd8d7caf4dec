/**
 * Scale on one machine, through the production setup: fonana-ws from ecosystem.config.js under
 * PM2 (cluster mode, WS_INSTANCES processes on one port, a PM2_HOME of its own), a redis-server
 * and a scratch PostgreSQL database of its own (bench/scale/stack.ts), and authenticated clients
 * in --workers child processes bound to 127.0.0.2, .3, … (bench/scale/client-worker.ts).
 *
 *   npm run bench:scale [-- --scenario scale --clients 40000 --instances 2 --workers 4
 *                           --concurrency 100 --targeted-rate 2000 --fanout-events 10 --fanout-rate 1]
 *   npm run bench:scale -- --scenario reload [--clients 10000 --rate 200 --before 20 --after 20]
 *   common: --redis single|cluster (one redis-server, or three local masters with REDIS_CLUSTER_NODES)
 *           --log-level info --server-env KEY=VALUE,… --tag NAME --keep-logs
 *
 * scale: every client subscribes its own notifications_ channel; then one notification to every
 * user (--targeted-rate per second) and --fanout-events events to every client (--fanout-rate
 * per second): operator broadcasts (--fanout broadcast, the default), or events on one shared
 * post_ channel that every client then also subscribes (--fanout post; its presence, one
 * viewers set for all, made connects slow down as the set grew: see README). Every client must get
 * exactly its events. Prints connections per process, connect rate, RSS and heap per
 * connection, CPU per delivery (server processes and Redis), latency, and per-process figures.
 *
 * reload: clients on their notifications_ channels, notifications to random users at --rate/s
 * throughout; after --before s `pm2 reload fonana-ws`; clients closed with 1001 reconnect as the
 * browser hook does (full-jitter backoff, subscribe with `since`). Prints the share of clients
 * ready again within 30 s of the reload (and the distribution), notification latency p50/p99
 * before, during and after, what was replayed, and what was lost (must be 0).
 *
 * Writes bench/results/scale-<scenario>-<date>[-tag].json. Exits 1 when an event is missing.
 * Not part of npm test. See README.md, "Scale on one machine".
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Cluster, Redis } from 'ioredis';
import { publishWithHistory } from '../websocket-server/src/broker/history-script.ts';
import { isAlive } from '../test/ops/support/pm2.ts';
import { Histogram } from './compare/support/histogram.ts';
import { Fleet, type Collected } from './scale/fleet.ts';
import { loadAverage } from './scale/proc.ts';
import { Stack } from './scale/stack.ts';
import type { ClientSpec } from './scale/protocol.ts';

const { values: flags } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'scale' },
    clients: { type: 'string' },
    instances: { type: 'string', default: '2' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '100' },
    'targeted-rate': { type: 'string', default: '2000' },
    'fanout-events': { type: 'string', default: '10' },
    fanout: { type: 'string', default: 'broadcast' },
    'fanout-rate': { type: 'string', default: '1' },
    rate: { type: 'string', default: '200' },
    before: { type: 'string', default: '20' },
    after: { type: 'string', default: '20' },
    redis: { type: 'string', default: 'single' },
    'log-level': { type: 'string', default: 'info' },
    'server-env': { type: 'string', default: '' },
    tag: { type: 'string', default: '' },
    'keep-logs': { type: 'boolean', default: false },
  },
});

const SCENARIO = flags.scenario;
if (SCENARIO !== 'scale' && SCENARIO !== 'reload') throw new Error(`--scenario is scale or reload, not ${SCENARIO}`);
const CLIENTS = Number(flags.clients ?? (SCENARIO === 'scale' ? 40_000 : 10_000));
const INSTANCES = Number(flags.instances);
const WORKERS = Number(flags.workers);
const REDIS_MODE = flags.redis === 'cluster' ? 'cluster' : 'single';
const PUBSUB = REDIS_MODE === 'cluster' ? 'sharded' : 'plain';
const SERVER_ENV = Object.fromEntries(
  flags['server-env']
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stdout.write(`${line}\n`);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const MiB = 2 ** 20;
const started = new Date();

/** Files of the server's sources that differ from HEAD (the build includes them). */
function dirtyServerFiles(): string[] {
  try {
    const root = fileURLToPath(new URL('../', import.meta.url));
    return execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'websocket-server/src']).toString().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** When the server build was written (a reused build may predate the run). */
function builtAt(entry: string): string {
  try {
    return statSync(entry).mtime.toISOString();
  } catch {
    return 'unknown';
  }
}

function commit(): string {
  try {
    const root = fileURLToPath(new URL('../', import.meta.url));
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'websocket-server/src', 'bench/scale', 'bench/scale.ts']).toString().trim();
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

function delta(before: Record<number, number>, after: Record<number, number>): Record<number, number> {
  return Object.fromEntries(Object.entries(after).map(([port, value]) => [port, round(value - (before[Number(port)] ?? 0), 2)]));
}

function merged(histograms: number[][][] | undefined) {
  const histogram = new Histogram();
  for (const pairs of histograms ?? []) histogram.merge(pairs);
  return { count: histogram.count, p50: round(histogram.percentile(50), 2), p90: round(histogram.percentile(90), 2), p99: round(histogram.percentile(99), 2), p999: round(histogram.percentile(99.9), 2), max: round(histogram.max, 2) };
}

function quantiles(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
  return { count: sorted.length, p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: sorted.at(-1) ?? NaN };
}

const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() };
log(`bench/scale ${SCENARIO}: ${CLIENTS} clients, fonana-ws × ${INSTANCES} under PM2, ${REDIS_MODE === 'cluster' ? 'a three-master Redis Cluster' : 'one Redis'}, ${WORKERS} client processes; ${machine.cpus} × ${machine.model}, Node ${machine.node}; load average ${loadAverage()}`);

const stack = new Stack({ users: CLIENTS, instances: INSTANCES, logLevel: flags['log-level'], redis: REDIS_MODE, serverEnv: SERVER_ENV, log });
const fleet = new Fleet(WORKERS);
let publisher: Redis | Cluster | undefined;
let cleaning: Promise<void> | undefined;
const failures: string[] = [];
const loads: Record<string, string> = { start: loadAverage() };
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping PM2, the clients and Redis, dropping the scratch database`);
    void cleanUp().finally(() => process.exit(130));
  });
}

let result: Record<string, unknown> = {};
try {
  await Promise.all([stack.start(), fleet.ready()]);
  publisher = stack.publisher();
  const addressOf = (w: number) => `127.0.0.${2 + w}`;
  const notifications = (i: number) => `notifications_${stack.userIds[i]}`;
  const postChannel = `post_${stack.postId}`;
  let seq = 0;
  const notify = (i: number) => {
    const s = now();
    const q = ++seq;
    const data = {
      notification: { id: `scale-n-${q}`, type: 'LIKE', title: 'Someone liked your post', message: 'A benchmark notification', isRead: false, createdAt: new Date(s).toISOString() },
      s,
      q,
    };
    return publishWithHistory(publisher!, 'ws:', notifications(i), JSON.stringify({ type: 'notification', data, id: `scale-n-${q}` }), PUBSUB);
  };
  const like = () => {
    const s = now();
    const q = ++seq;
    return publishWithHistory(publisher!, 'ws:', postChannel, JSON.stringify({ type: 'post_liked', data: { postId: stack.postId, userId: stack.userIds[0], likesCount: q, version: q, s }, id: `scale-l-${q}` }), PUBSUB);
  };
  /** Waits until slot `slot` holds `expected` accepted deliveries, or nothing moved for `quietMs`. */
  const awaitAccepted = async (slot: number, expected: number, quietMs = 15_000) => {
    let last = -1;
    let lastChange = performance.now();
    for (;;) {
      const total = (await fleet.count()).accepted[slot] ?? 0;
      if (total >= expected) return total;
      if (total !== last) {
        last = total;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > quietMs) return total;
      await sleep(100);
    }
  };
  const serverCpu = (snap: Awaited<ReturnType<Stack['snapshot']>>) => snap.reduce((sum, p) => sum + p.cpuSeconds, 0);

  // ---- connect ----
  const FANOUT_POST = SCENARIO === 'scale' && flags.fanout === 'post';
  const channelsOf = (i: number) => (FANOUT_POST ? [notifications(i), postChannel] : [notifications(i)]);
  const fanoutSlot = 1;
  const broadcast = () => {
    const s = now();
    const q = ++seq;
    const payload = JSON.stringify({ type: 'broadcast', data: { message: `Benchmark broadcast ${q}`, level: 'info', s }, id: `scale-b-${q}` });
    return REDIS_MODE === 'cluster' ? (publisher as Cluster).spublish('ws:{broadcast}', payload) : (publisher as Redis).publish('ws:broadcast', payload);
  };
  const specs: ClientSpec[] = stack.userIds.map((_, i) => ({ token: stack.tokens[i]!, channels: channelsOf(i) }));
  await sleep(1_000);
  const idle = await stack.snapshot();
  loads.connect = loadAverage();
  const cpuBeforeConnect = serverCpu(idle);
  const daemonBeforeConnect = stack.daemonCpuSeconds();
  log(`\n[connect] ${CLIENTS} clients (${channelsOf(0).length} channel(s) each), ${flags.concurrency} handshakes in flight, from ${WORKERS} source addresses`);
  const conn = await fleet.connect(stack.wsUrl, specs, addressOf, Number(flags.concurrency));
  const connected = await stack.snapshot();
  const connectRate = conn.opened / conn.seconds;
  const connectCpuUs = ((serverCpu(connected) - cpuBeforeConnect) * 1e6) / Math.max(1, conn.opened);
  const readyMs = merged(conn.readyMsPerWorker);
  const daemonConnectUs = ((stack.daemonCpuSeconds() - daemonBeforeConnect) * 1e6) / Math.max(1, conn.opened);
  log(`  ${conn.opened} of ${CLIENTS} connected and subscribed in ${conn.seconds.toFixed(1)} s = ${connectRate.toFixed(0)}/s; per client ready in p50 ${readyMs.p50} ms, p99 ${readyMs.p99} ms; server CPU ${connectCpuUs.toFixed(0)} µs per connection (+ ${daemonConnectUs.toFixed(0)} µs in the PM2 daemon, the cluster master that accepts)`);
  if (conn.failed > 0) failures.push(`${conn.failed} of ${CLIENTS} clients did not connect: ${JSON.stringify(conn.errors)}`);
  if (Object.keys(conn.errors).length) log(`  on the way: ${JSON.stringify(conn.errors)}`);
  await sleep(3_000);
  const settled = await stack.snapshot();
  const perProcess = settled.map((p, k) => ({
    instance: p.instance,
    pid: p.pid,
    connections: p.connections,
    subscriptions: p.subscriptions,
    rssMiB: round(p.rssBytes / MiB),
    heapUsedMiB: round((p.metrics.nodejs_heap_size_used_bytes ?? NaN) / MiB),
    rssKiBPerConnection: round((p.rssBytes - idle[k]!.rssBytes) / Math.max(1, p.connections) / 1024),
    heapKiBPerConnection: round(((p.metrics.nodejs_heap_size_used_bytes ?? NaN) - (idle[k]!.metrics.nodejs_heap_size_used_bytes ?? NaN)) / Math.max(1, p.connections) / 1024),
  }));
  for (const p of perProcess) {
    log(`  instance ${p.instance} (pid ${p.pid}): ${p.connections} connections (${((100 * p.connections) / Math.max(1, conn.opened)).toFixed(1)}%), ${p.subscriptions} subscriptions, RSS ${p.rssMiB} MiB (+${p.rssKiBPerConnection} KiB/connection), heap ${p.heapUsedMiB} MiB (+${p.heapKiBPerConnection} KiB/connection, no forced GC)`);
  }
  result = { connect: { opened: conn.opened, failed: conn.failed, errors: conn.errors, seconds: round(conn.seconds, 2), perSecond: round(connectRate, 0), readyMs, serverCpuUsPerConnection: round(connectCpuUs, 0), pm2DaemonCpuUsPerConnection: round(daemonConnectUs, 0) }, perProcess };

  if (SCENARIO === 'scale') {
    // ---- one notification to every user ----
    const rate = Number(flags['targeted-rate']);
    log(`\n[targeted] one notification to each of the ${conn.opened} users at ${rate}/s`);
    await fleet.phase('targeted');
    const cpu0 = serverCpu(await stack.snapshot());
    const redis0 = await stack.redisCpuByPort();
    const t0 = performance.now();
    const order = stack.userIds.map((_, i) => i).sort(() => Math.random() - 0.5);
    const pending: Promise<unknown>[] = [];
    for (let sent = 0; sent < order.length; ) {
      const due = Math.min(order.length, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      for (; sent < due; sent++) pending.push(notify(order[sent]!));
      await sleep(5);
    }
    await Promise.all(pending);
    const publishSeconds = (performance.now() - t0) / 1000;
    const got = await awaitAccepted(0, CLIENTS);
    const targetedCpu = serverCpu(await stack.snapshot()) - cpu0;
    const targetedByPort = delta(redis0, await stack.redisCpuByPort());
    const targetedRedis = Object.values(targetedByPort).reduce((a, b) => a + b, 0);
    log(`  ${got} of ${CLIENTS} delivered (published in ${publishSeconds.toFixed(1)} s); server CPU ${targetedCpu.toFixed(2)} s = ${((targetedCpu * 1e6) / Math.max(1, got)).toFixed(1)} µs/delivery; Redis ${((targetedRedis * 1e6) / CLIENTS).toFixed(1)} µs/event`);

    // ---- fan-out on one shared post_ channel ----
    const events = Number(flags['fanout-events']);
    const fanoutRate = Number(flags['fanout-rate']);
    log(`\n[fan-out] ${events} events ${FANOUT_POST ? `on ${postChannel}` : 'as operator broadcasts (channel broadcast, every socket)'} at ${fanoutRate}/s, each to all ${conn.opened} clients`);
    await fleet.phase('fanout');
    const cpu1 = serverCpu(await stack.snapshot());
    const redis1 = await stack.redisCpuByPort();
    const t1 = performance.now();
    for (let i = 0; i < events; i++) {
      const wait = t1 + (i * 1000) / fanoutRate - performance.now();
      if (wait > 0) await sleep(wait);
      await (FANOUT_POST ? like() : broadcast());
    }
    const fanGot = await awaitAccepted(fanoutSlot, CLIENTS * events);
    const fanoutCpu = serverCpu(await stack.snapshot()) - cpu1;
    const fanoutByPort = delta(redis1, await stack.redisCpuByPort());
    const fanoutRedis = Object.values(fanoutByPort).reduce((a, b) => a + b, 0);
    for (const port of stack.redisPorts) log(`  redis-server :${port}: CPU ${targetedByPort[port]!.toFixed(2)} s in [targeted], ${fanoutByPort[port]!.toFixed(2)} s in [fan-out]`);
    loads.measured = loadAverage();
    log(`  ${fanGot} of ${CLIENTS * events} delivered; server CPU ${fanoutCpu.toFixed(2)} s = ${((fanoutCpu * 1e6) / Math.max(1, fanGot)).toFixed(2)} µs/delivery; Redis ${((fanoutRedis * 1e6) / events).toFixed(0)} µs/event`);

    // ---- verify ----
    const collected = await fleet.collect();
    const final = await stack.snapshot();
    const wrong = (slot: number, want: number) => collected.accepted[slot]!.filter((n) => n !== want).length;
    const targetedWrong = wrong(0, 1);
    const fanoutWrong = wrong(fanoutSlot, events);
    if (targetedWrong) failures.push(`targeted: ${targetedWrong} of ${CLIENTS} clients did not get exactly their one notification`);
    if (fanoutWrong) failures.push(`fan-out: ${fanoutWrong} of ${CLIENTS} clients did not get exactly ${events} events`);
    if (collected.closes.some((n) => n > 0)) failures.push(`${collected.closes.filter((n) => n > 0).length} clients were closed by the server: ${JSON.stringify(collected.closeCodes)}`);
    const targetedLatency = merged(collected.live.targeted);
    const fanoutLatency = merged(collected.live.fanout);
    log(`\nlatency (publish → client): targeted p50 ${targetedLatency.p50} ms, p99 ${targetedLatency.p99} ms, max ${targetedLatency.max} ms; fan-out p50 ${fanoutLatency.p50} ms, p99 ${fanoutLatency.p99} ms, max ${fanoutLatency.max} ms`);
    const perNode = final.map((p, k) => {
      const sent = (p.metrics.ws_messages_sent_total ?? 0) - (settled[k]!.metrics.ws_messages_sent_total ?? 0);
      const cpu = p.cpuSeconds - settled[k]!.cpuSeconds;
      return { instance: p.instance, pid: p.pid, connections: p.connections, framesSent: sent, cpuSeconds: round(cpu, 2), cpuUsPerFrame: round((cpu * 1e6) / Math.max(1, sent), 2), rssMiB: round(p.rssBytes / MiB) };
    });
    for (const p of perNode) log(`  per node: instance ${p.instance}: ${p.connections} connections, ${p.framesSent} frames sent, CPU ${p.cpuSeconds} s (${p.cpuUsPerFrame} µs/frame), RSS ${p.rssMiB} MiB`);
    Object.assign(result, {
      targeted: { events: CLIENTS, rate, delivered: got, clientsWrong: targetedWrong, publishSeconds: round(publishSeconds, 2), serverCpuSeconds: round(targetedCpu, 2), serverCpuUsPerDelivery: round((targetedCpu * 1e6) / Math.max(1, got), 2), redisCpuUsPerEvent: round((targetedRedis * 1e6) / CLIENTS, 1), latencyMs: targetedLatency },
      fanout: { via: FANOUT_POST ? postChannel : 'broadcast', events, rate: fanoutRate, delivered: fanGot, expected: CLIENTS * events, clientsWrong: fanoutWrong, serverCpuSeconds: round(fanoutCpu, 2), serverCpuUsPerDelivery: round((fanoutCpu * 1e6) / Math.max(1, fanGot), 2), redisCpuUsPerEvent: round((fanoutRedis * 1e6) / events, 0), latencyMs: fanoutLatency },
      perNode,
      redis: { mode: REDIS_MODE, cpuSecondsByPort: { targeted: targetedByPort, fanout: fanoutByPort } },
      duplicates: collected.duplicates,
      gaps: collected.gaps,
      clientErrors: collected.errors,
    });
  } else {
    result.reload = await reloadScenario();
  }

  async function reloadScenario() {
    const rate = Number(flags.rate);
    const beforeS = Number(flags.before);
    const afterS = Number(flags.after);
    const expected = new Int32Array(CLIENTS);
    let publishing = true;
    let published = 0;
    let publishErrors = 0;
    const inFlight = new Set<Promise<unknown>>();
    const publishLoop = (async () => {
      const t0 = performance.now();
      let sent = 0;
      while (publishing) {
        const due = Math.floor(((performance.now() - t0) * rate) / 1000) + 1;
        for (; sent < due; sent++) {
          const i = Math.floor(Math.random() * CLIENTS);
          const p = notify(i).then(
            () => {
              expected[i]!++;
              published++;
            },
            () => publishErrors++,
          );
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await sleep(5);
      }
      await Promise.all(inFlight);
    })();

    log(`\n[steady] notifications to random users at ${rate}/s; ${beforeS} s before the reload`);
    await fleet.phase('before');
    await sleep(beforeS * 1000);
    const pidsBefore = (await stack.processes()).map((p) => p.pid);
    loads.reload = loadAverage();
    await fleet.phase('reload');
    const reloadAt = now();
    const timeline: Array<[number, number]> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        timeline.push([round((now() - reloadAt) / 1000, 2), (await fleet.count()).ready]);
        await sleep(250);
      }
    })();
    log(`[reload] pm2 reload fonana-ws`);
    const reload = await stack.pm2.run(['reload', 'fonana-ws'], { timeoutMs: 120_000 });
    log(`  pm2 reload returned after ${(reload.ms / 1000).toFixed(1)} s`);
    // Every client ready again (or 60 s after the reload began).
    const deadline = reloadAt + 60_000;
    while (now() < deadline) {
      const { ready } = await fleet.count();
      if (ready >= CLIENTS && pidsBefore.every((pid) => !isAlive(pid))) break;
      await sleep(250);
    }
    const allReadyAfterS = (now() - reloadAt) / 1000;
    await fleet.phase('after');
    log(`  every client ready again ${allReadyAfterS.toFixed(1)} s after the reload began; steady for ${afterS} s more`);
    await sleep(afterS * 1000);
    sampling = false;
    await sampler;
    publishing = false;
    await publishLoop;
    loads.measured = loadAverage();
    const totalExpected = expected.reduce((a, b) => a + b, 0);
    await awaitAccepted(0, totalExpected);
    const collected: Collected = await fleet.collect();
    const after = await stack.snapshot();
    const pidsAfter = after.map((p) => p.pid);
    for (const p of after) log(`  after the reload: instance ${p.instance} (pid ${p.pid}): ${p.connections} connections, RSS ${round(p.rssBytes / MiB)} MiB`);

    let lost = 0;
    let extra = 0;
    collected.accepted[0]!.forEach((n, i) => {
      if (n < expected[i]!) lost += expected[i]! - n;
      else extra += n - expected[i]!;
    });
    const closed = collected.closes.filter((n) => n > 0).length;
    const readyAfter = collected.readyAgainAt.map((t, i) => (collected.closes[i]! > 0 && t > 0 ? (t - reloadAt) / 1000 : Infinity));
    const within30 = readyAfter.filter((s) => s <= 30).length;
    const outage = collected.readyAgainAt.map((t, i) => (collected.closes[i]! > 0 && t > 0 ? t - collected.lastCloseAt[i]! : NaN)).filter(Number.isFinite);
    const latency = { before: merged(collected.live.before), reload: merged(collected.live.reload), after: merged(collected.live.after), replayed: merged(collected.replayed) };
    const figures = {
      published,
      publishErrors,
      delivered: collected.accepted[0]!.reduce((a, b) => a + b, 0),
      lost,
      extra,
      duplicatesDropped: collected.duplicates[0],
      gaps: collected.gaps[0],
      recovered: collected.recovered,
      notRecovered: collected.notRecovered,
      clientsClosed: closed,
      closesPerClient: quantiles(collected.closes),
      closeCodes: collected.closeCodes,
      failedAttempts: collected.failedAttempts.reduce((a, b) => a + b, 0),
      readyAgainWithin30s: { clients: within30, of: CLIENTS, percent: round((100 * within30) / CLIENTS, 2) },
      readyAgainSecondsAfterReload: quantiles(readyAfter.filter(Number.isFinite)),
      neverReadyAgain: readyAfter.filter((s) => !Number.isFinite(s)).length,
      outageMsPerClient: quantiles(outage),
      pm2ReloadMs: reload.ms,
      allReadyAfterSeconds: round(allReadyAfterS, 1),
      pids: { before: pidsBefore, after: pidsAfter },
      connectionsAfter: after.map((p) => ({ instance: p.instance, pid: p.pid, connections: p.connections, rssMiB: round(p.rssBytes / MiB) })),
      latencyMs: latency,
      readyTimeline: timeline,
      clientErrors: collected.errors,
      stoppedClients: collected.stopped,
    };
    log(`\n  published ${published} notifications (${publishErrors} publish errors); delivered ${figures.delivered}; lost ${lost}; extra ${extra}; copies dropped ${figures.duplicatesDropped}; gaps ${figures.gaps}`);
    log(`  ${closed} of ${CLIENTS} clients closed by the reload (codes ${JSON.stringify(collected.closeCodes)}; closes per client p50 ${figures.closesPerClient.p50}, max ${figures.closesPerClient.max}); ${figures.failedAttempts} failed attempts; subscribes with since: ${collected.recovered} recovered, ${collected.notRecovered} not`);
    log(`  ready again within 30 s of the reload: ${within30} of ${CLIENTS} = ${figures.readyAgainWithin30s.percent}% (seconds after the reload: p50 ${round(figures.readyAgainSecondsAfterReload.p50, 2)}, p90 ${round(figures.readyAgainSecondsAfterReload.p90, 2)}, p99 ${round(figures.readyAgainSecondsAfterReload.p99, 2)}, max ${round(figures.readyAgainSecondsAfterReload.max, 2)}; never ${figures.neverReadyAgain}); outage per client p50 ${round(figures.outageMsPerClient.p50, 0)} ms, p99 ${round(figures.outageMsPerClient.p99, 0)} ms`);
    log(`  notification latency, live: before p50 ${latency.before.p50} / p99 ${latency.before.p99} ms (${latency.before.count}); during the reload p50 ${latency.reload.p50} / p99 ${latency.reload.p99} ms (${latency.reload.count}); after p50 ${latency.after.p50} / p99 ${latency.after.p99} ms (${latency.after.count}); replayed on reconnect p50 ${latency.replayed.p50} / p99 ${latency.replayed.p99} ms (${latency.replayed.count})`);
    log(`  pids ${pidsBefore.join(',')} → ${pidsAfter.join(',')}`);
    if (lost > 0) failures.push(`reload: ${lost} notifications lost`);
    if (figures.neverReadyAgain > 0 && closed > 0) failures.push(`reload: ${figures.neverReadyAgain} clients not ready again`);
    if (closed < CLIENTS) failures.push(`reload: only ${closed} of ${CLIENTS} clients were closed (was every process replaced?)`);
    return figures;
  }

  log(`\nload average: ${JSON.stringify(loads)}`);
  if (failures.length) log(`\nFAILURES (${failures.length}):\n  ${failures.join('\n  ')}`);
  else log(SCENARIO === 'scale' ? '\nevery event was delivered to every client, exactly once' : '\nno event lost');
  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = `${resultsDir}scale-${SCENARIO}-${started.toISOString().slice(0, 10)}${flags.tag ? `-${flags.tag}` : ''}.json`;
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ startedAt: started.toISOString(), commit: commit(), uncommittedServerFiles: dirtyServerFiles(), serverBuild: { dir: stack.build.distDir, reused: Boolean(process.env.BENCH_WS_DIST_DIR), builtAt: builtAt(stack.build.entry) }, command: `npm run bench:scale -- ${process.argv.slice(2).join(' ')}`.trim(), seconds: round((Date.now() - started.getTime()) / 1000, 0), machine, loadAverage: loads, options: { scenario: SCENARIO, clients: CLIENTS, instances: INSTANCES, workers: WORKERS, flags, serverEnv: stack.env }, result, failures }, null, 2)}\n`,
  );
  log(`wrote ${jsonPath}${flags['keep-logs'] ? ` (server logs in ${stack.logDir})` : ''}`);
  process.exitCode = failures.length ? 1 : 0;
} finally {
  await cleanUp();
}

async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await fleet.closeAll().catch(() => {});
    fleet.kill();
    publisher?.disconnect();
    await stack.stop(flags['keep-logs']);
  })();
  return cleaning;
}
