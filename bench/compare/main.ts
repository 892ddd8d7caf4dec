/**
 * Side by side, in one run: the project's server, Socket.IO 4 (+ @socket.io/redis-adapter, fed
 * by @socket.io/redis-emitter) and a minimal `ws` + ioredis server that frames each message once,
 * through the same scenarios. Every server is a real process fed through Redis; the clients live
 * in --workers child processes bound to their own 127.0.0.x source addresses; server CPU comes
 * from /proc/<pid>/stat, memory from /proc/<pid>/status (and the heap after a forced GC).
 *
 *   npm run bench:compare [-- --targets project,socketio,raw --scenarios burst,connect,idle,steady,targeted
 *                              --burst-subscribers 2000 --burst-messages 500
 *                              --connect-count 2000 --connect-rate 250
 *                              --idle-connections 10000
 *                              --steady-subscribers 10000 --steady-rate 2 --steady-seconds 20
 *                              --targeted-users 10000 --targeted-rate 2000 --targeted-seconds 20
 *                              --workers 2 --log-level info --project-env KEY=VALUE,… --cpu-prof --tag NAME]
 *
 * The project's clients are authenticated with real next-auth session tokens of users in a
 * scratch PostgreSQL database that the run creates and drops, and every subscribe goes through
 * the server's authorization. Writes bench/results/compare-<date>.json and, for a run of all three
 * servers, bench/results/compare.svg. See README.md, "Performance".
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Emitter } from '@socket.io/redis-emitter';
import { Redis } from 'ioredis';
import { createScratchDatabase } from '../../test/support/scratch-database.ts';
import { TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../../test/support/env.ts';
import { publishWithHistory } from '../../websocket-server/src/broker/history-script.ts';
import type { ConnectRequest, Target } from './protocol.ts';
import { renderSvg, renderTable, type Row } from './report.ts';
import { machineCpu, startServer, type ProbeWindow, type RunningServer } from './servers.ts';
import { analyseSlow, type SlowAnalysis } from './support/analysis.ts';
import { Histogram } from './support/histogram.ts';
import { createUsersWithTokens, deleteKeysUnder } from '../support/bench-run.ts';
import { Fleet } from './workers.ts';

const { values: flags } = parseArgs({
  options: {
    targets: { type: 'string', default: 'project,socketio,raw' },
    scenarios: { type: 'string', default: 'burst,connect,idle,steady,targeted' },
    'burst-subscribers': { type: 'string', default: '2000' },
    'burst-messages': { type: 'string', default: '500' },
    'connect-count': { type: 'string', default: '2000' },
    'connect-rate': { type: 'string', default: '250' },
    'idle-connections': { type: 'string', default: '10000' },
    'steady-subscribers': { type: 'string', default: '10000' },
    'steady-rate': { type: 'string', default: '2' },
    'steady-seconds': { type: 'string', default: '20' },
    'targeted-users': { type: 'string', default: '10000' },
    'targeted-rate': { type: 'string', default: '2000' },
    'targeted-seconds': { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    'log-level': { type: 'string', default: 'info' },
    'project-env': { type: 'string', default: '' },
    'slow-ms': { type: 'string', default: '10' },
    'cpu-prof': { type: 'boolean', default: false },
    tag: { type: 'string', default: '' },
  },
});

const TARGETS = flags.targets.split(',').filter(Boolean) as Target[];
const SCENARIOS = new Set(flags.scenarios.split(',').filter(Boolean));
const num = (name: keyof typeof flags) => Number(flags[name]);
const SIZES = {
  burst: { subscribers: num('burst-subscribers'), messages: num('burst-messages') },
  connect: { count: num('connect-count'), ratePerSecond: num('connect-rate') },
  idle: { connections: num('idle-connections') },
  steady: { subscribers: num('steady-subscribers'), ratePerSecond: num('steady-rate'), seconds: num('steady-seconds') },
  targeted: { users: num('targeted-users'), ratePerSecond: num('targeted-rate'), seconds: num('targeted-seconds') },
};
const WORKERS = Math.max(2, num('workers'));
const SLOW_MS = num('slow-ms');
const PROJECT_ENV = Object.fromEntries(
  flags['project-env']
    .split(',')
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);
for (const target of TARGETS) if (!['project', 'socketio', 'raw'].includes(target)) throw new Error(`unknown target ${target}`);

/** The commit (and whether the server's sources differ from it) this run measured. */
function gitDescribe(): string {
  try {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const head = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).toString().trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'websocket-server/src']).toString().trim();
    return dirty ? `${head} + uncommitted changes in websocket-server/src` : head;
  } catch {
    return 'unknown';
  }
}

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
const started = new Date();
const stamp = started.toISOString().slice(0, 16).replace(':', '');
const runDir = `${RESULTS_DIR}runs/${stamp}${flags.tag ? `-${flags.tag}` : ''}/`;
mkdirSync(runDir, { recursive: true });

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REDIS_PREFIX = `cmp:${randomBytes(4).toString('hex')}:`;
const PREFIX = { project: `${REDIS_PREFIX}ws:`, socketio: `${REDIS_PREFIX}sio`, raw: `${REDIS_PREFIX}raw:` };
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stdout.write(`${line}\n`);

const usersNeeded = Math.max(
  SCENARIOS.has('burst') ? SIZES.burst.subscribers : 0,
  SCENARIOS.has('connect') ? SIZES.connect.count : 0,
  SCENARIOS.has('idle') ? SIZES.idle.connections : 0,
  SCENARIOS.has('steady') ? SIZES.steady.subscribers : 0,
  SCENARIOS.has('targeted') ? SIZES.targeted.users : 0,
);

log(`bench/compare: ${TARGETS.join(', ')} × ${[...SCENARIOS].join(', ')}; ${WORKERS} client processes; machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`);
log(`sizes: ${JSON.stringify(SIZES)}`);

const database = await createScratchDatabase();
process.env.TEST_DATABASE_URL = database.url;
const { Fixtures } = await import('../../websocket-server/test/support/fixtures.ts');
const { mintSessionToken } = await import('../../websocket-server/test/support/tokens.ts');
const fixtures = new Fixtures();
const redis = new Redis(REDIS_URL);
const emitter = new Emitter(redis, { key: PREFIX.socketio });
const fleet = new Fleet(WORKERS);
let server: RunningServer | undefined;
let phase = 0;
let cleaning: Promise<void> | undefined;
// Interrupted (Ctrl-C, timeout): the same clean-up as a finished run, then exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the servers and clients, dropping the scratch database`);
    void cleanUp().finally(() => process.exit(130));
  });
}

type Result = Record<string, unknown>;
const results: Record<string, Partial<Record<Target, Result>>> = {};
const failures: string[] = [];

try {
  const setupStarted = performance.now();
  await fleet.ready();
  const creator = await fixtures.creator();
  const post = await fixtures.post(creator.id);
  const { userIds, tokens } = await createUsersWithTokens(fixtures, mintSessionToken, usersNeeded, 'bench', randomBytes(4).toString('hex'));
  log(`setup: ${userIds.length} users and session tokens in a scratch database, ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
  const postChannel = `post_${post.id}`;
  const ownChannel = (i: number) => `notifications_${userIds[i]}`;

  // ---- helpers bound to this run ----
  const envFor = (target: Target): Record<string, string | undefined> => {
    if (target === 'project') {
      return {
        WS_PORT: '0',
        WS_HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
        WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
        REDIS_URL,
        REDIS_CHANNEL_PREFIX: PREFIX.project,
        LOG_LEVEL: flags['log-level'],
        // Limits that protect production from one client are raised: here every connection
        // comes from a few loopback addresses, as fast as the harness can open them.
        MAX_CONNECTIONS: '19500',
        MAX_CONNECTIONS_PER_USER: '100000',
        MAX_PENDING_HANDSHAKES: '2000',
        CONNECT_RATE_PER_IP: '1000000',
        CONNECT_BURST_PER_IP: '1000000',
        SUBSCRIBES_PER_SECOND_PER_USER: '1000',
        SUBSCRIBE_BURST_PER_USER: '1000',
        NODE_ENV: undefined,
        ...PROJECT_ENV,
      };
    }
    if (target === 'socketio') return { REDIS_URL, SOCKETIO_KEY: PREFIX.socketio };
    return { REDIS_URL, REDIS_CHANNEL_PREFIX: PREFIX.raw };
  };
  const boot = async (target: Target, name: string) => {
    // One profile per thread (tsx's loader thread too), named CPU.<date>.<time>.<pid>.<thread>.<n>:
    // the main thread is thread 0.
    const nodeArgs = flags['cpu-prof'] && target === 'project' ? ['--cpu-prof', `--cpu-prof-dir=${runDir}${name}-${target}-profiles`] : [];
    server = await startServer({ target, env: envFor(target), logPath: `${runDir}${name}-${target}.log`, nodeArgs });
    phase++;
    return server;
  };
  const shutdown = async () => {
    await fleet.closeAll();
    await server?.stop();
    server = undefined;
  };
  const addressOf = (w: number) => `127.0.0.${2 + ((phase * WORKERS + w) % 250)}`;
  const eventName = (kind: 'like' | 'notification') => (kind === 'like' ? 'post_liked' : 'notification');
  const specs = (target: Target, count: number, channelOf: (i: number) => string): ConnectRequest['conns'] =>
    Array.from({ length: count }, (_, i) => (target === 'project' ? { channel: channelOf(i), token: tokens[i]! } : { channel: channelOf(i) }));
  const connectOrFail = async (target: Target, srv: RunningServer, conns: ConnectRequest['conns'], event: string, options: { ratePerSecond?: number } = {}) => {
    const reply = await fleet.connect(target, srv.url, conns, event, addressOf, options);
    if (reply.failed > 0) {
      const message = `${target}: ${reply.failed} of ${conns.length} connections failed: ${JSON.stringify(reply.errors)}`;
      failures.push(message);
      log(`  FAIL ${message}`);
    }
    return reply;
  };
  let seq = 0;
  const publish = (target: Target, kind: 'like' | 'notification', channel: string): Promise<unknown> => {
    const s = now();
    const q = ++seq;
    const data =
      kind === 'like'
        ? { postId: post.id, userId: creator.id, likesCount: q, s, q }
        : {
            notification: { id: `bench-n-${q}`, type: 'LIKE', title: 'Someone liked your post', message: 'A benchmark notification', isRead: false, createdAt: new Date(s).toISOString() },
            s,
            q,
          };
    const type = eventName(kind);
    if (target === 'project') return publishWithHistory(redis, PREFIX.project, channel, JSON.stringify({ type, data }));
    if (target === 'socketio') {
      emitter.to(channel).emit(type, data);
      return Promise.resolve();
    }
    return redis.publish(PREFIX.raw + channel, JSON.stringify({ type, channel, data }));
  };
  /** Counts per client against the expectation, merged latency, and what the probe saw. */
  const verify = async (target: Target, scenario: string, expected: number[]) => {
    const collected = await fleet.collect();
    let wrong = 0;
    let missing = 0;
    let extra = 0;
    collected.counts.forEach((count, j) => {
      const want = expected[j] ?? 0;
      if (count !== want) wrong++;
      if (count < want) missing += want - count;
      else extra += count - want;
    });
    const histogram = new Histogram();
    for (const pairs of collected.histograms) histogram.merge(pairs);
    const delivered = collected.counts.reduce((a, b) => a + b, 0);
    const wanted = expected.reduce((a, b) => a + b, 0);
    const complete = wrong === 0;
    if (!complete) {
      const message = `${scenario} / ${target}: ${wrong} of ${expected.length} clients did not get exactly their deliveries (${missing} missing, ${extra} extra; ${delivered} of ${wanted})`;
      failures.push(message);
      log(`  FAIL ${message}`);
    }
    return {
      delivered,
      expected: wanted,
      complete,
      clientsWrong: wrong,
      dropped: collected.dropped,
      latencyMs: { p50: histogram.percentile(50), p90: histogram.percentile(90), p99: histogram.percentile(99), p999: histogram.percentile(99.9), max: histogram.max },
      slow: collected.slow,
      pings: collected.pings,
    };
  };
  const probeSummary = (window: ProbeWindow) => ({
    loopDelayMs: window.loopDelay,
    gc: { count: window.gc.count, totalMs: window.gc.totalMs, maxMs: window.gc.maxMs, pausesOver5ms: window.gc.long.length },
    stallsOver15ms: window.stalls.length,
    worstStallMs: Math.max(0, ...window.stalls.map((s) => s.ms)),
  });
  const record = (scenario: string, target: Target, result: Result) => {
    (results[scenario] ??= {})[target] = result;
  };
  /** Contention during a measured window: the machine's busy share, and how long the server's
   * event loop waited for a CPU (other processes: clients, Redis, PostgreSQL, anything else). */
  const contention = (srv: RunningServer) => {
    const m0 = machineCpu();
    const w0 = srv.runQueueWaitMs();
    return () => {
      const m1 = machineCpu();
      return { machineBusyPercent: Math.round((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total)), serverRunQueueWaitMs: Math.round(srv.runQueueWaitMs() - w0) };
    };
  };

  // ---- 1. burst ----
  if (SCENARIOS.has('burst')) {
    const { subscribers, messages } = SIZES.burst;
    log(`\n[burst] ${subscribers} subscribers on one channel, ${messages} messages published at once`);
    for (const target of TARGETS) {
      const srv = await boot(target, 'burst');
      try {
        const conn = await connectOrFail(target, srv, specs(target, subscribers, () => postChannel), eventName('like'));
        await sleep(1000);
        await fleet.reset(Infinity);
        await srv.window();
        const load = contention(srv);
        const cpu0 = srv.cpuSeconds();
        const t0 = performance.now();
        await Promise.all(Array.from({ length: messages }, () => publish(target, 'like', postChannel)));
        const published = performance.now();
        await fleet.awaitTotal(conn.opened * messages);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = srv.cpuSeconds() - cpu0;
        const probe = probeSummary(await srv.window());
        const check = await verify(target, 'burst', Array.from({ length: subscribers }, () => messages));
        const result = {
          deliveries: check.delivered,
          expected: check.expected,
          complete: check.complete,
          cpuSeconds: cpu,
          cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, check.delivered),
          publishMs: published - t0,
          drainSeconds: seconds,
          latencyMs: check.latencyMs,
          probe,
          contention: load(),
        };
        record('burst', target, result);
        log(`  ${target.padEnd(8)} ${check.delivered}/${check.expected} in ${seconds.toFixed(2)} s; server CPU ${cpu.toFixed(2)} s = ${result.cpuUsPerDelivery.toFixed(2)} µs/delivery; latency p50 ${check.latencyMs.p50} ms p99 ${check.latencyMs.p99} ms; machine ${result.contention.machineBusyPercent}% busy, server waited ${result.contention.serverRunQueueWaitMs} ms for a CPU`);
      } finally {
        await shutdown();
      }
    }
  }

  // ---- 2. connect + subscribe ----
  if (SCENARIOS.has('connect')) {
    const { count, ratePerSecond } = SIZES.connect;
    log(`\n[connect] ${count} connections at ${ratePerSecond}/s, each subscribing its own channel`);
    for (const target of TARGETS) {
      const srv = await boot(target, 'connect');
      try {
        await sleep(500);
        await srv.window();
        const load = contention(srv);
        const cpu0 = srv.cpuSeconds();
        const rss0 = srv.rssBytes();
        const conn = await connectOrFail(target, srv, specs(target, count, ownChannel), eventName('notification'), { ratePerSecond });
        const cpu = srv.cpuSeconds() - cpu0;
        const probe = probeSummary(await srv.window());
        const result = {
          opened: conn.opened,
          failed: conn.failed,
          seconds: conn.seconds,
          cpuSeconds: cpu,
          cpuUsPerConnection: (cpu * 1e6) / Math.max(1, conn.opened),
          rssGrowthBytes: srv.rssBytes() - rss0,
          probe,
          contention: load(),
        };
        record('connect', target, result);
        log(`  ${target.padEnd(8)} ${conn.opened}/${count} in ${conn.seconds.toFixed(2)} s; server CPU ${cpu.toFixed(2)} s = ${result.cpuUsPerConnection.toFixed(0)} µs/connection`);
      } finally {
        await shutdown();
      }
    }
  }

  // ---- 4. steady broadcast ----
  if (SCENARIOS.has('steady')) {
    const { subscribers, ratePerSecond, seconds } = SIZES.steady;
    const messages = Math.round(ratePerSecond * seconds);
    log(`\n[steady] ${subscribers} subscribers on one channel, ${ratePerSecond} msg/s for ${seconds} s (${messages} messages)`);
    for (const target of TARGETS) {
      const srv = await boot(target, 'steady');
      try {
        const conn = await connectOrFail(target, srv, specs(target, subscribers, () => postChannel), eventName('like'), {});
        await sleep(2000);
        await fleet.reset(SLOW_MS);
        await srv.window();
        const load = contention(srv);
        const cpu0 = srv.cpuSeconds();
        const t0 = performance.now();
        for (let i = 0; i < messages; i++) {
          const wait = t0 + (i * 1000) / ratePerSecond - performance.now();
          if (wait > 0) await sleep(wait);
          void publish(target, 'like', postChannel);
        }
        await fleet.awaitTotal(conn.opened * messages);
        const cpu = srv.cpuSeconds() - cpu0;
        const window = await srv.window();
        const check = await verify(target, 'steady', Array.from({ length: subscribers }, () => messages));
        const result = {
          deliveries: check.delivered,
          expected: check.expected,
          complete: check.complete,
          cpuSeconds: cpu,
          cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, check.delivered),
          latencyMs: check.latencyMs,
          probe: probeSummary(window),
          contention: load(),
        };
        record('steady', target, result);
        log(`  ${target.padEnd(8)} ${check.delivered}/${check.expected}; latency p50 ${check.latencyMs.p50} ms p99 ${check.latencyMs.p99} ms max ${check.latencyMs.max.toFixed(1)} ms; server CPU ${cpu.toFixed(2)} s = ${result.cpuUsPerDelivery.toFixed(2)} µs/delivery; machine ${result.contention.machineBusyPercent}% busy, server waited ${result.contention.serverRunQueueWaitMs} ms for a CPU`);
      } finally {
        await shutdown();
      }
    }
  }

  // ---- 3. idle memory, then 5. targeted on the same connections when the sizes agree ----
  const runIdle = SCENARIOS.has('idle');
  const runTargeted = SCENARIOS.has('targeted');
  const shared = runIdle && runTargeted && SIZES.idle.connections === SIZES.targeted.users;
  const idleGroup = async (target: Target, srv: RunningServer, n: number) => {
    await sleep(500);
    const before = await srv.gc();
    const rss0 = srv.rssBytes();
    const conn = await connectOrFail(target, srv, specs(target, n, ownChannel), eventName('notification'));
    await sleep(3000);
    const rss1 = srv.rssBytes();
    const after = await srv.gc();
    const rss2 = srv.rssBytes();
    const result = {
      connections: conn.opened,
      connectSeconds: conn.seconds,
      rssBeforeBytes: rss0,
      rssAfterBytes: rss1,
      rssAfterGcBytes: rss2,
      rssKiBPerConnection: (rss1 - rss0) / Math.max(1, conn.opened) / 1024,
      heapBeforeBytes: before.heapUsed,
      heapAfterBytes: after.heapUsed,
      heapKiBPerConnection: (after.heapUsed - before.heapUsed) / Math.max(1, conn.opened) / 1024,
      externalKiBPerConnection: (after.external - before.external) / Math.max(1, conn.opened) / 1024,
    };
    record('idle', target, result);
    log(`  ${target.padEnd(8)} ${conn.opened}/${n} connected in ${conn.seconds.toFixed(1)} s; RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MiB = ${result.rssKiBPerConnection.toFixed(1)} KiB/connection; heap after GC ${result.heapKiBPerConnection.toFixed(1)} KiB/connection`);
    return conn;
  };
  const targetedGroup = async (target: Target, srv: RunningServer, users: number) => {
    const { ratePerSecond, seconds } = SIZES.targeted;
    const total = Math.round(ratePerSecond * seconds);
    const expected = new Array<number>(users).fill(0);
    await sleep(1000);
    await fleet.reset(SLOW_MS);
    await srv.window();
    const load = contention(srv);
    const cpu0 = srv.cpuSeconds();
    const t0 = performance.now();
    let sent = 0;
    let lateTicks = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerSecond) / 1000) + 1);
      if (due - sent > ratePerSecond / 50) lateTicks++;
      for (; sent < due; sent++) {
        const i = Math.floor(Math.random() * users);
        expected[i]!++;
        void publish(target, 'notification', ownChannel(i));
      }
      await sleep(2);
    }
    const publishSeconds = (performance.now() - t0) / 1000;
    await fleet.awaitTotal(total);
    const cpu = srv.cpuSeconds() - cpu0;
    const window = await srv.window();
    const check = await verify(target, 'targeted', expected);
    const analysis: SlowAnalysis = analyseSlow(check.slow, window, check.pings, check.latencyMs.p99);
    const result = {
      deliveries: check.delivered,
      expected: check.expected,
      complete: check.complete,
      publishSeconds,
      publisherLateTicks: lateTicks,
      cpuSeconds: cpu,
      cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, check.delivered),
      latencyMs: check.latencyMs,
      probe: probeSummary(window),
      probeClock: window.clock,
      contention: load(),
      slowDeliveries: analysis,
    };
    record('targeted', target, result);
    log(`  ${target.padEnd(8)} ${check.delivered}/${check.expected}; latency p50 ${check.latencyMs.p50} ms p99 ${check.latencyMs.p99} ms max ${check.latencyMs.max.toFixed(1)} ms; server CPU ${cpu.toFixed(2)} s = ${result.cpuUsPerDelivery.toFixed(2)} µs/delivery`);
    log(`           ${analysis.summary}`);
    log(`           contention: machine ${result.contention.machineBusyPercent}% busy; the server's event loop waited ${result.contention.serverRunQueueWaitMs} ms for a CPU`);
  };
  if (shared) {
    log(`\n[idle + targeted] ${SIZES.idle.connections} connections, each subscribed to its own channel: idle memory, then ${SIZES.targeted.ratePerSecond} msg/s to random users for ${SIZES.targeted.seconds} s`);
    for (const target of TARGETS) {
      const srv = await boot(target, 'idle-targeted');
      try {
        await idleGroup(target, srv, SIZES.idle.connections);
        await targetedGroup(target, srv, SIZES.targeted.users);
      } finally {
        await shutdown();
      }
    }
  } else {
    if (runIdle) {
      log(`\n[idle] ${SIZES.idle.connections} idle connections, each subscribed to its own channel`);
      for (const target of TARGETS) {
        const srv = await boot(target, 'idle');
        try {
          await idleGroup(target, srv, SIZES.idle.connections);
        } finally {
          await shutdown();
        }
      }
    }
    if (runTargeted) {
      log(`\n[targeted] ${SIZES.targeted.users} users on their own channels, ${SIZES.targeted.ratePerSecond} msg/s to random users for ${SIZES.targeted.seconds} s`);
      for (const target of TARGETS) {
        const srv = await boot(target, 'targeted');
        try {
          await connectOrFail(target, srv, specs(target, SIZES.targeted.users, ownChannel), eventName('notification'));
          await targetedGroup(target, srv, SIZES.targeted.users);
        } finally {
          await shutdown();
        }
      }
    }
  }

  // ---- report ----
  const rows: Row[] = [];
  const metric = (scenario: string, label: string, unit: string, pick: (r: Result) => unknown) => {
    const byTarget = results[scenario];
    if (!byTarget) return;
    const values = Object.fromEntries(TARGETS.map((t) => [t, byTarget[t] ? Number(pick(byTarget[t]!)) : NaN])) as Partial<Record<Target, number>>;
    const complete = Object.fromEntries(TARGETS.map((t) => [t, byTarget[t]?.complete !== false])) as Partial<Record<Target, boolean>>;
    rows.push({ scenario, label, unit, values, complete });
  };
  const lat = (key: 'p50' | 'p99') => (r: Result) => (r.latencyMs as Record<string, number>)[key];
  metric('burst', 'server CPU per delivery', 'µs', (r) => r.cpuUsPerDelivery);
  metric('burst', 'time to deliver all', 's', (r) => r.drainSeconds);
  metric('connect', 'server CPU per connection', 'µs', (r) => r.cpuUsPerConnection);
  metric('idle', 'RSS per connection', 'KiB', (r) => r.rssKiBPerConnection);
  metric('idle', 'JS heap per connection (after GC)', 'KiB', (r) => r.heapKiBPerConnection);
  metric('steady', 'latency p50', 'ms', lat('p50'));
  metric('steady', 'latency p99', 'ms', lat('p99'));
  metric('steady', 'server CPU per delivery', 'µs', (r) => r.cpuUsPerDelivery);
  metric('targeted', 'latency p50', 'ms', lat('p50'));
  metric('targeted', 'latency p99', 'ms', lat('p99'));
  metric('targeted', 'server CPU per delivery', 'µs', (r) => r.cpuUsPerDelivery);

  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() };
  const table = renderTable(rows, TARGETS);
  log(`\n${table}`);
  log(`sizes: burst ${SIZES.burst.subscribers} subscribers × ${SIZES.burst.messages} messages; connect ${SIZES.connect.count} at ${SIZES.connect.ratePerSecond}/s; idle ${SIZES.idle.connections}; steady ${SIZES.steady.subscribers} subscribers, ${SIZES.steady.ratePerSecond} msg/s for ${SIZES.steady.seconds} s; targeted ${SIZES.targeted.users} users, ${SIZES.targeted.ratePerSecond} msg/s for ${SIZES.targeted.seconds} s; ${WORKERS} client processes`);
  log(`machine: ${machine.cpus} × ${machine.model}, ${machine.memoryGiB} GiB, Node ${machine.node}, Linux ${machine.kernel}; project LOG_LEVEL=${flags['log-level']}${Object.keys(PROJECT_ENV).length ? `, ${JSON.stringify(PROJECT_ENV)}` : ''}`);
  if (failures.length) log(`\nFAILURES (${failures.length}):\n  ${failures.join('\n  ')}`);
  else log('\nevery expected delivery arrived, at every client');

  const date = started.toISOString().slice(0, 10);
  const jsonPath = `${RESULTS_DIR}compare-${date}${flags.tag ? `-${flags.tag}` : ''}.json`;
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ startedAt: started.toISOString(), commit: process.env.BENCH_COMMIT ?? gitDescribe(), seconds: (Date.now() - started.getTime()) / 1000, machine, sizes: SIZES, workers: WORKERS, options: { logLevel: flags['log-level'], projectEnv: PROJECT_ENV, cpuProfile: flags['cpu-prof'] }, targets: TARGETS, rows, results, failures, table, logs: runDir }, (key, value) => (key === 'slowSample' ? undefined : value), 2)}\n`,
  );
  log(`wrote ${jsonPath} (server logs${flags['cpu-prof'] ? ' and CPU profiles' : ''} in ${runDir})`);
  if (TARGETS.includes('project') && TARGETS.includes('socketio') && !flags.tag) {
    const svgPath = `${RESULTS_DIR}compare.svg`;
    writeFileSync(svgPath, renderSvg(rows, { title: `project ÷ Socket.IO, ${date} (${machine.cpus} cores, Node ${machine.node}); below 1 = project better` }));
    log(`wrote ${svgPath}`);
  }
  log(`total ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
  process.exitCode = failures.length ? 1 : 0;
} finally {
  await cleanUp();
}

/** Stops what the run started and removes what it wrote (database, Redis keys); once. */
async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await server?.stop().catch(() => {});
    fleet.kill();
    // What this run left in Redis: the project's history streams, under this run's prefix only.
    await deleteKeysUnder(redis, REDIS_PREFIX);
    redis.disconnect();
    await fixtures.close();
    await database.drop();
  })();
  return cleaning;
}
