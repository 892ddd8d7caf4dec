/**
 * A redis-server of the drill's own, on a free port (never 6379), without persistence
 * (`--save "" --appendonly no`), so a restart loses every key as a crashed production Redis
 * without AOF would. `kill()` is `redis-cli -p P shutdown nosave`; `restart()` starts it again on
 * the same port; `stop()` (idempotent, for `after` hooks) shuts it down and removes its dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../support/ports.ts';
import { run } from '../../ops/support/run.ts';

export class OwnRedis {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #log = '';

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(): Promise<OwnRedis> {
    const port = await freePort();
    if (port === 6379) throw new Error('refusing port 6379 (the shared Redis)');
    const redis = new OwnRedis(port, await mkdtemp(path.join(tmpdir(), 'drill-redis-')));
    await redis.#spawn();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  log(): string {
    return this.#log;
  }

  async #spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (chunk: Buffer) => (this.#log += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.#log += chunk.toString()));
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!this.running) throw new Error(`redis-server on ${this.port} exited:\n${this.#log}`);
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        // Not listening yet.
      } finally {
        probe.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} not ready in 10 s:\n${this.#log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** `redis-cli -p P shutdown nosave`: every key is gone, every connection drops. */
  async kill(): Promise<void> {
    if (!this.running) return;
    await run('redis-cli', ['-p', String(this.port), 'shutdown', 'nosave'], { timeoutMs: 10_000 });
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Starts it again on the same port (empty). */
  async restart(): Promise<void> {
    if (this.running) throw new Error('redis-server is still running');
    await this.#spawn();
  }

  /** `CLIENT KILL` of every connection whose name contains `nameContains`; resolves to how many. */
  async killClients(nameContains: string): Promise<number> {
    const admin = new Redis(this.url, { maxRetriesPerRequest: 1 });
    try {
      const list = (await admin.client('LIST')) as string;
      let killed = 0;
      for (const line of list.split('\n')) {
        const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
        const id = /\bid=(\d+)/.exec(line)?.[1];
        if (id && name.includes(nameContains)) killed += Number(await admin.client('KILL', 'ID', id));
      }
      return killed;
    } finally {
      admin.disconnect();
    }
  }

  /** Shuts it down if it runs and removes its directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.running) {
      await this.kill().catch(() => this.#child?.kill('SIGKILL'));
      if (this.running) {
        this.#child?.kill('SIGKILL');
        await this.#exited;
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
