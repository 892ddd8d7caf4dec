/**
 * A local three-node Redis Cluster for tests (redis-server 7 with `--cluster-enabled yes` on free
 * loopback ports, joined with `redis-cli --cluster create`, no replicas), never the shared 6379.
 * Started and stopped by the test that uses it; a node can be killed, restarted, a slot moved.
 * Used by test/broker/redis-cluster.test.ts and the app's cluster transport test
 * (test/app/redis-cluster-transport.test.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `count` free loopback ports, all held open at once so that they differ. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export class LocalCluster {
  readonly #children: ChildProcess[] = [];
  readonly #killAll = () => this.#children.forEach((child) => child.kill('SIGKILL'));

  private constructor(
    readonly ports: number[],
    readonly buses: number[],
    readonly dir: string,
  ) {}

  /** Three masters, no replicas; resolves once every node reports `cluster_state:ok`. */
  static async start(): Promise<LocalCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'fonana-redis-cluster-'));
    const [a, b, c, busA, busB, busC] = await freePorts(6);
    const cluster = new LocalCluster([a!, b!, c!], [busA!, busB!, busC!], dir);
    // Whatever happens to mocha, no redis-server outlives it.
    process.once('exit', cluster.#killAll);
    for (const port of cluster.ports) await cluster.#spawn(port);
    await run('redis-cli', ['--cluster', 'create', ...cluster.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of cluster.ports) {
      await until(async () => (await cluster.cli(port, 'cluster', 'info')).includes('cluster_state:ok'), `cluster_state:ok on ${port}`);
    }
    return cluster;
  }

  /** Starts (or starts again) the node of `port`; it keeps its cluster identity in nodes-<port>.conf. */
  async #spawn(port: number): Promise<void> {
    const i = this.ports.indexOf(port);
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      // The bus port is chosen too: port + 10000 may be taken or above 65535.
      '--cluster-port', String(this.buses[i]), '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
      '--dir', this.dir, '--save', '', '--appendonly', 'no', '--logfile', join(this.dir, `redis-${port}.log`),
    ], { stdio: 'ignore' });
    child.on('error', () => {});
    this.#children[i] = child;
    await until(async () => (await this.cli(port, 'ping')) === 'PONG', `redis-server on ${port}`);
  }

  /** Stops the node of `port` without saving (its keys are gone) and resolves once it exited. */
  async kill(port: number): Promise<void> {
    const child = this.#children[this.ports.indexOf(port)]!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await this.cli(port, 'shutdown', 'nosave').catch(() => {});
    await exited;
  }

  /** Starts the node of `port` again and waits until the whole cluster is ok. */
  async restart(port: number): Promise<void> {
    await this.#spawn(port);
    for (const p of this.ports) await until(async () => (await this.cli(p, 'cluster', 'info')).includes('cluster_state:ok'), `cluster_state:ok on ${p}`);
  }

  get seeds(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  }

  async keyslot(name: string): Promise<number> {
    return Number(await this.cli(this.ports[0]!, 'cluster', 'keyslot', name));
  }

  /** The port of the master that owns `slot`, as the cluster reports it now. */
  async ownerOf(slot: number): Promise<number> {
    const ranges = JSON.parse(await this.cli(this.ports[0]!, '--json', 'cluster', 'slots')) as Array<[number, number, [string, number, string]]>;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`slot ${slot} is not served`);
    return range[2][1];
  }

  async nodeId(port: number): Promise<string> {
    return this.cli(port, 'cluster', 'myid');
  }

  /** Moves `slot` and its keys from its owner to `to`, as `redis-cli --cluster reshard` does. */
  async moveSlot(slot: number, to: number): Promise<void> {
    const from = await this.ownerOf(slot);
    const [fromId, toId] = [await this.nodeId(from), await this.nodeId(to)];
    await this.cli(to, 'cluster', 'setslot', String(slot), 'importing', fromId);
    await this.cli(from, 'cluster', 'setslot', String(slot), 'migrating', toId);
    const keys = (await this.cli(from, 'cluster', 'getkeysinslot', String(slot), '1000')).split('\n').filter(Boolean);
    if (keys.length > 0) await this.cli(from, 'migrate', '127.0.0.1', String(to), '', '0', '5000', 'KEYS', ...keys);
    // Once per master, as redis-cli does: a node told again that it owns a slot drops the slot's
    // shard channel subscribers (SUNSUBSCRIBE) although nothing moved.
    for (const port of [to, from, ...this.ports.filter((p) => p !== to && p !== from)]) {
      await this.cli(port, 'cluster', 'setslot', String(slot), 'node', toId);
    }
    for (const port of this.ports) await until(async () => (await this.cli(port, 'cluster', 'info')).includes('cluster_state:ok'), 'cluster_state:ok');
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.ports.map(async (port, i) => {
        const child = this.#children[i];
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await this.cli(port, 'shutdown', 'nosave').catch(() => {});
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    process.removeListener('exit', this.#killAll);
    await rm(this.dir, { recursive: true, force: true });
  }
}
