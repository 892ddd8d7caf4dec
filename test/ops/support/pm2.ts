/**
 * PM2 driven through its CLI with a PM2_HOME of its own (a temp dir), so a test never touches
 * the machine's or the project's PM2 daemon. `kill()` stops the daemon and every app it runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cleanEnv, pm2Bin, repoRoot } from './paths.ts';
import { run, runOk, type RunResult } from './run.ts';

export interface Pm2Process {
  name: string;
  pmId: number;
  pid: number;
  status: string;
  execMode: string;
  execPath: string;
  restarts: number;
}

export class Pm2 {
  readonly home: string;
  readonly #env: NodeJS.ProcessEnv;

  private constructor(home: string, env: NodeJS.ProcessEnv) {
    this.home = home;
    this.#env = env;
  }

  /** `env` is what the CLI (and so the daemon and its apps) runs with. METRICS_PORT is off
   * unless `env` names one: ecosystem.config.js turns it on at the fixed 9610 + n, which two
   * test runs at once would both try to bind. */
  static async create(env: Record<string, string | undefined>): Promise<Pm2> {
    // Short path: PM2 puts its unix sockets here (108-byte limit on socket paths).
    const home = await mkdtemp(path.join(tmpdir(), 'pm2-'));
    return new Pm2(home, cleanEnv({ METRICS_PORT: '', ...env, PM2_HOME: home }));
  }

  get env(): NodeJS.ProcessEnv {
    return this.#env;
  }

  /** Runs the CLI; `env` adds to (or, with undefined, removes from) the environment of this call. */
  run(args: readonly string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<RunResult> {
    const env = { ...this.#env, ...options.env };
    for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
    return runOk(process.execPath, [pm2Bin, ...args], { env, cwd: repoRoot, timeoutMs: options.timeoutMs ?? 60_000 });
  }

  async list(): Promise<Pm2Process[]> {
    const { stdout } = await this.run(['jlist']);
    const rows = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{
      name: string;
      pm_id: number;
      pid: number;
      pm2_env: { status: string; exec_mode: string; pm_exec_path: string; restart_time: number };
    }>;
    return rows.map((row) => ({
      name: row.name,
      pmId: row.pm_id,
      pid: row.pid,
      status: row.pm2_env.status,
      execMode: row.pm2_env.exec_mode,
      execPath: row.pm2_env.pm_exec_path,
      restarts: row.pm2_env.restart_time,
    }));
  }

  /** Stops every app and the daemon (if one was started, by this class or by a script given
   * this PM2_HOME), then removes PM2_HOME. Safe to call twice. */
  async kill(): Promise<void> {
    if (existsSync(path.join(this.home, 'pm2.pid'))) {
      await run(process.execPath, [pm2Bin, 'kill'], { env: this.#env, cwd: repoRoot, timeoutMs: 60_000 });
    }
    await rm(this.home, { recursive: true, force: true });
  }
}

/** True while a process with this pid runs. A zombie counts as gone: this machine's PID 1 does
 * not always reap orphans, and an exited process that nobody reaped holds no port or socket. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces).
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
