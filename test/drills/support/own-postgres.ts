/**
 * A PostgreSQL of the drill's own: `initdb` into a temp dir and `pg_ctl -o "-p P" start`, both as
 * the `postgres` user (the server refuses to run as root), trust authentication, on a free port
 * of 127.0.0.1 (never 5432). `down()` stops it (every connection is refused until `up()`), the
 * data directory stays, so what was committed before is there again afterwards. `destroy()`
 * (idempotent, for `after` hooks) stops it and removes the directory.
 */
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../support/ports.ts';
import { run, runOk } from '../../ops/support/run.ts';

function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => path.join(root, v, 'bin')).find((dir) => existsSync(path.join(dir, 'initdb')));
  if (!found) throw new Error('no initdb under /usr/lib/postgresql/*/bin');
  return found;
}

export class OwnPostgres {
  readonly port: number;
  readonly dir: string;
  readonly #bin: string;
  #running = false;

  private constructor(port: number, dir: string, bin: string) {
    this.port = port;
    this.dir = dir;
    this.#bin = bin;
  }

  static async start(): Promise<OwnPostgres> {
    const bin = postgresBin();
    const port = await freePort();
    if (port === 5432) throw new Error('refusing port 5432 (the shared PostgreSQL)');
    const dir = await mkdtemp(path.join(tmpdir(), 'drill-pg-'));
    const pg = new OwnPostgres(port, dir, bin);
    try {
      const { uid, gid } = await postgresIds();
      await chown(dir, uid, gid);
      await pg.#asPostgres('initdb', ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
      await pg.up();
    } catch (error) {
      await pg.destroy();
      throw error;
    }
    return pg;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get running(): boolean {
    return this.#running;
  }

  /** A URL of database `name` (default `postgres`). */
  url(name = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${name}`;
  }

  async up(): Promise<void> {
    await this.#asPostgres('pg_ctl', [
      '-D', this.dataDir,
      '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`,
      '-l', path.join(this.dir, 'postgres.log'),
      '-w', '-t', '20', 'start',
    ]);
    this.#running = true;
  }

  /** Stops it (`-m fast`: open sessions are ended, nothing committed is lost). */
  async down(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.#running) return;
    await this.#asPostgres('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '20', 'stop']);
    this.#running = false;
  }

  async createDatabase(name: string): Promise<string> {
    await runOk(path.join(this.#bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', name], { timeoutMs: 20_000 });
    return this.url(name);
  }

  log(): Promise<string> {
    return readFile(path.join(this.dir, 'postgres.log'), 'utf8').catch(() => '');
  }

  /** Stops it if it runs (immediate) and removes the directory. Safe to call twice. */
  async destroy(): Promise<void> {
    if (existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
      await run('runuser', ['-u', 'postgres', '--', path.join(this.#bin, 'pg_ctl'), '-D', this.dataDir, '-m', 'immediate', '-w', 'stop'], { timeoutMs: 20_000 }).catch(() => undefined);
    }
    this.#running = false;
    await rm(this.dir, { recursive: true, force: true });
  }

  #asPostgres(tool: string, args: string[]) {
    return runOk('runuser', ['-u', 'postgres', '--', path.join(this.#bin, tool), ...args], { timeoutMs: 30_000, cwd: this.dir });
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const { stdout: uid } = await runOk('id', ['-u', 'postgres']);
  const { stdout: gid } = await runOk('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
