/**
 * RedisPresence on a real three-node Redis Cluster started here (never the shared 6379): the
 * conformance suite, with announcements observed as a cluster broker receives them (SSUBSCRIBE
 * `<prefix>{<channel>}`), and the keys of a channel in its slot.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { createLogger } from '../../src/logger.ts';
import { presenceKeys } from '../../src/presence/presence.ts';
import { RedisPresence } from '../../src/presence/redis.ts';
import { presenceConformance, recorder, type Announcements } from './conformance-suite.ts';

const run = promisify(execFile);
const logger = createLogger({ level: 'error', format: 'json' });
const PREFIX = 'presence-cluster:';

/** Three masters on free loopback ports (and bus ports), no replicas, no persistence. */
class LocalCluster {
  readonly #children: ChildProcess[] = [];
  readonly #killAll = () => this.#children.forEach((child) => child.kill('SIGKILL'));
  private constructor(readonly ports: number[], readonly dir: string) {}

  static async start(): Promise<LocalCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'fonana-presence-cluster-'));
    const ports = await freePorts(6);
    const cluster = new LocalCluster(ports.slice(0, 3), dir);
    process.once('exit', cluster.#killAll);
    for (const [i, port] of cluster.ports.entries()) {
      const child = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(ports[3 + i]),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no',
      ], { stdio: 'ignore' });
      child.on('error', () => {});
      cluster.#children.push(child);
      await until(async () => (await cluster.cli(port, 'ping')) === 'PONG');
    }
    await run('redis-cli', ['--cluster', 'create', ...cluster.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of cluster.ports) await until(async () => (await cluster.cli(port, 'cluster', 'info')).includes('cluster_state:ok'));
    return cluster;
  }

  get seeds() {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map((child, i) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        return this.cli(this.ports[i]!, 'shutdown', 'nosave').catch(() => child.kill('SIGKILL')).then(() => exited);
      }),
    );
    process.off('exit', this.#killAll);
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function until(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the local Redis Cluster');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

describe('presence › Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  before(async function () {
    this.timeout(60_000);
    cluster = await LocalCluster.start();
  });
  after(async () => {
    await cluster?.stop();
  });

  presenceConformance('RedisPresence on a Redis Cluster', async (ttlMs) => {
    const store = new RedisPresence({ clusterNodes: cluster.seeds, channelPrefix: PREFIX, ttlMs, logger });
    await store.ready();
    // What a cluster broker does: SSUBSCRIBE <prefix>{<channel>} at the owner of its slot.
    const subscriber = new Cluster(cluster.seeds, { shardedSubscribers: true });
    subscriber.on('error', () => {});
    const recorders = new Map<string, ReturnType<typeof recorder>>();
    subscriber.on('smessage', (redisChannel: string, payload: string) => recorders.get(redisChannel.slice(PREFIX.length + 1, -1))?.push(payload));
    return {
      store,
      async observe(channel): Promise<Announcements> {
        const heard = recorder();
        recorders.set(channel, heard);
        await subscriber.ssubscribe(`${PREFIX}{${channel}}`);
        return heard;
      },
      async close() {
        subscriber.disconnect();
        await store.close();
      },
    };
  });

  it('keeps the keys of a channel in its slot, on the master that owns it', async () => {
    const store = new RedisPresence({ clusterNodes: cluster.seeds, channelPrefix: PREFIX, ttlMs: 5_000, logger });
    try {
      await store.ready();
      // Channels that hash to different masters: every store call must find its node.
      const channels = Array.from({ length: 12 }, (_, i) => `post_slot${i}`);
      for (const channel of channels) {
        await store.add(channel, [{ clientId: 'n/u1', userId: 'u1' }]);
        expect((await store.announce(channel, 0)).outcome).to.equal('published');
        const keys = Object.values(presenceKeys(PREFIX, channel));
        const slots = new Set(await Promise.all(keys.map(async (key) => cluster.cli(cluster.ports[0]!, 'cluster', 'keyslot', key))));
        expect([...slots]).to.deep.equal([await cluster.cli(cluster.ports[0]!, 'cluster', 'keyslot', `{${channel}}`)]);
      }
      const owners = new Set<number>();
      for (const port of cluster.ports) if (Number(await cluster.cli(port, 'dbsize')) > 0) owners.add(port);
      expect(owners.size, 'the channels are spread over the masters').to.be.above(1);
    } finally {
      await store.close();
    }
  });
});
