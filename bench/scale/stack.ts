/**
 * What bench/scale runs against, all its own and all removed at the end: a redis-server on a
 * free port (test/drills/support/own-redis.ts, never the shared 6379), a scratch PostgreSQL
 * database with N users (bulk insert) and their next-auth session tokens, a production build of
 * the server (test/ops/support/build.ts) and a PM2 daemon with its own PM2_HOME
 * (test/ops/support/pm2.ts) running `fonana-ws` from the project's ecosystem.config.js in
 * cluster mode, its environment overridden only for ports, Redis, the database and the
 * admission limits that a few loopback source addresses would otherwise hit.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { OwnRedis } from '../../test/drills/support/own-redis.ts';
import { LocalCluster } from '../../websocket-server/test/support/redis-cluster.ts';
import { buildServer, type ServerBuild } from '../../test/ops/support/build.ts';
import { ecosystemFile } from '../../test/ops/support/paths.ts';
import { Pm2 } from '../../test/ops/support/pm2.ts';
import { createScratchDatabase } from '../../test/support/scratch-database.ts';
import { freePort } from '../../test/support/ports.ts';
import { TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../../test/support/env.ts';
import { cpuSeconds, rssBytes, scrape, type Scrape } from './proc.ts';

export interface ServerProcessInfo {
  /** NODE_APP_INSTANCE: its monitoring port is METRICS_PORT + instance. */
  instance: number;
  pid: number;
}

export interface StackOptions {
  users: number;
  instances: number;
  logLevel: string;
  /** 'single': one redis-server (REDIS_URL); 'cluster': three local masters (REDIS_CLUSTER_NODES). */
  redis: 'single' | 'cluster';
  /** KEY=VALUE overrides of the server's environment, applied last. */
  serverEnv: Record<string, string>;
  log: (line: string) => void;
}

export class Stack {
  redis?: OwnRedis;
  cluster?: LocalCluster;
  database!: Awaited<ReturnType<typeof createScratchDatabase>>;
  build!: ServerBuild;
  pm2!: Pm2;
  logDir!: string;
  port!: number;
  metricsPort!: number;
  userIds: string[] = [];
  tokens: string[] = [];
  postId = '';
  closeFixtures: () => Promise<void> = async () => {};
  readonly env: Record<string, string> = {};

  constructor(readonly options: StackOptions) {}

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  async start(): Promise<void> {
    const { users, instances, log } = this.options;
    let t0 = Date.now();
    if (this.options.redis === 'cluster') this.cluster = await LocalCluster.start();
    else this.redis = await OwnRedis.start();
    this.database = await createScratchDatabase();
    process.env.TEST_DATABASE_URL = this.database.url;
    const { Fixtures } = await import('../../websocket-server/test/support/fixtures.ts');
    const { mintSessionToken } = await import('../../websocket-server/test/support/tokens.ts');
    const fixtures = new Fixtures();
    this.closeFixtures = () => fixtures.close();
    const creator = await fixtures.creator();
    this.postId = (await fixtures.post(creator.id)).id;
    const tag = randomBytes(4).toString('hex');
    this.userIds = Array.from({ length: users }, (_, i) => `scale${tag}u${i}`);
    for (let i = 0; i < users; i += 5_000) {
      await fixtures.prisma.user.createMany({
        data: this.userIds.slice(i, i + 5_000).map((id, k) => ({ id, email: `scale-${tag}-${i + k}@test.invalid`, name: `Scale ${i + k}`, passwordHash: 'not-a-real-hash' })),
      });
    }
    this.tokens = await Promise.all(this.userIds.map((id) => mintSessionToken(id, { maxAgeSeconds: 4 * 3600 })));
    log(`setup: ${this.cluster ? `a Redis Cluster of three masters :${this.redisPorts.join(', :')}` : `redis-server :${this.redisPorts[0]}`}, scratch database ${this.database.name} with ${users} users and session tokens, ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    t0 = Date.now();
    const reuse = process.env.BENCH_WS_DIST_DIR;
    // BENCH_WS_DIST_DIR: a build made before (`npx tsc -p websocket-server/tsconfig.build.json
    // --outDir websocket-server/dist/<name>`), reused and kept, to save the minute of tsc per run.
    this.build = reuse ? { distDir: path.resolve(reuse), entry: path.resolve(reuse, 'websocket-server/src/main.js'), ms: 0, remove: async () => {} } : await buildServer();
    log(reuse ? `setup: the server build in ${this.build.distDir} (BENCH_WS_DIST_DIR)` : `setup: production build of the server (tsc), ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    t0 = Date.now();
    this.logDir = await mkdtemp(path.join(tmpdir(), 'bench-scale-logs-'));
    this.port = await freePort();
    this.metricsPort = await freePortRun(instances);
    Object.assign(this.env, {
      WS_INSTANCES: String(instances),
      WS_PORT: String(this.port),
      WS_HOST: '127.0.0.1',
      METRICS_PORT: String(this.metricsPort),
      // Required with NODE_ENV=production, which the ecosystem file sets; the bench clients send no Origin.
      ALLOWED_ORIGINS: 'http://127.0.0.1',
      WS_DIST_DIR: this.build.distDir,
      LOG_DIR: this.logDir,
      DATABASE_URL: this.database.url,
      ...(this.cluster ? { REDIS_CLUSTER_NODES: this.redisPorts.map((port) => `127.0.0.1:${port}`).join(',') } : { REDIS_URL: this.redis!.url }),
      REDIS_CHANNEL_PREFIX: 'ws:',
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      LOG_LEVEL: this.options.logLevel,
      // Every client here comes from four loopback addresses as fast as the harness opens them:
      // the per-address connect rate would refuse them. Per-user and per-process limits stay.
      CONNECT_RATE_PER_IP: '1000000',
      CONNECT_BURST_PER_IP: '1000000',
      // One process can hold at most ~19,900 sockets here (ulimit -n is 20,000, hard): refuse
      // with 503 before the process runs out of descriptors.
      MAX_CONNECTIONS: '19800',
      // PM2 restarts a process above max_memory_restart (1G by default): 20,000 fresh
      // connections can pass that (see the RSS this prints); measure instead of restarting.
      WS_MAX_MEMORY: '3G',
      ...this.options.serverEnv,
    });
    this.pm2 = await Pm2.create(this.env);
    await this.pm2.run(['start', ecosystemFile, '--only', 'fonana-ws']);
    for (let n = 0; n < instances; n++) await this.#waitHealthy(n);
    log(`setup: PM2 (own PM2_HOME) running fonana-ws × ${instances} (cluster mode) on :${this.port}, monitoring on :${this.metricsPort}+n, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  async #waitHealthy(instance: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const health = await this.health(instance).catch(() => null);
      if (health?.status === 'ok') return;
      if (Date.now() > deadline) throw new Error(`fonana-ws instance ${instance} not healthy in ${timeoutMs} ms; logs in ${this.logDir}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async health(instance: number): Promise<{ status: string; nodeId: string; connections: number; subscriptions: number }> {
    const response = await fetch(`http://127.0.0.1:${this.metricsPort + instance}/health`, { signal: AbortSignal.timeout(5_000) });
    return (await response.json()) as { status: string; nodeId: string; connections: number; subscriptions: number };
  }

  /** The fonana-ws processes now, by instance (their pid from the nodeId `host:pid` of /health). */
  async processes(): Promise<ServerProcessInfo[]> {
    const out: ServerProcessInfo[] = [];
    for (let instance = 0; instance < this.options.instances; instance++) {
      const health = await this.health(instance);
      out.push({ instance, pid: Number(health.nodeId.slice(health.nodeId.lastIndexOf(':') + 1)) });
    }
    return out;
  }

  /** Per process: /health, /metrics and /proc readings at one moment. */
  async snapshot(): Promise<Array<ServerProcessInfo & { connections: number; subscriptions: number; cpuSeconds: number; rssBytes: number; metrics: Scrape }>> {
    const processes = await this.processes();
    return Promise.all(
      processes.map(async (p) => {
        const health = await this.health(p.instance);
        const metrics = await scrape(`http://127.0.0.1:${this.metricsPort + p.instance}/metrics`);
        return { ...p, connections: health.connections, subscriptions: health.subscriptions, cpuSeconds: cpuSeconds(p.pid), rssBytes: rssBytes(p.pid), metrics };
      }),
    );
  }

  /** CPU seconds of the PM2 daemon, which in cluster mode is the master that accepts every
   * connection and hands it to a worker; NaN when it is not running. */
  daemonCpuSeconds(): number {
    try {
      return cpuSeconds(Number(readFileSync(path.join(this.pm2.home, 'pm2.pid'), 'utf8').trim()));
    } catch {
      return NaN;
    }
  }

  /** The redis-server ports: one, or the cluster's three masters. */
  get redisPorts(): number[] {
    return this.cluster ? this.cluster.ports : [this.redis!.port];
  }

  /** A publishing client: the one Redis, or the cluster (then publish in mode 'sharded'). */
  publisher(): Redis | Cluster {
    const client = this.cluster ? new Cluster(this.cluster.seeds) : new Redis(this.redis!.url);
    client.on('error', () => {});
    return client;
  }

  /** CPU (user + sys seconds, from INFO) of each redis-server, by port. */
  async redisCpuByPort(): Promise<Record<number, number>> {
    const out: Record<number, number> = {};
    for (const port of this.redisPorts) {
      const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      try {
        const info = await client.info('cpu');
        const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
        out[port] = field('used_cpu_user') + field('used_cpu_sys');
      } finally {
        client.disconnect();
      }
    }
    return out;
  }

  /** CPU of every redis-server together. */
  async redisCpuSeconds(): Promise<number> {
    return Object.values(await this.redisCpuByPort()).reduce((a, b) => a + b, 0);
  }

  /** Stops PM2 (and its processes), Redis, the build, the logs, the database. Safe to call twice. */
  async stop(keepLogs = false): Promise<void> {
    await this.pm2?.kill().catch(() => {});
    await this.redis?.stop().catch(() => {});
    await this.cluster?.stop().catch(() => {});
    await this.build?.remove().catch(() => {});
    if (this.logDir && !keepLogs) await rm(this.logDir, { recursive: true, force: true });
    await this.closeFixtures().catch(() => {});
    await this.database?.drop().catch(() => {});
  }
}

/** A free port P with P + 1 … P + count − 1 free too (METRICS_PORT + NODE_APP_INSTANCE). */
async function freePortRun(count: number): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port > 65_000) continue;
    let ok = true;
    for (let i = 1; i < count && ok; i++) ok = await isFree(port + i);
    if (ok) return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
