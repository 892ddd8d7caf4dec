/**
 * Starts the three servers of bench/compare as real processes, each with the probe preloaded
 * (support/probe.mjs: forced GC and event-loop/GC observations over IPC), its log in a file, and
 * its CPU and RSS read from /proc/<pid>.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Target } from './protocol.ts';

const PROBE = fileURLToPath(new URL('./support/probe.mjs', import.meta.url));
const ENTRIES: Record<Target, string> = {
  // BENCH_PROJECT_ENTRY: another checkout's main.ts, for an A/B of two commits (ab.ts).
  project: process.env.BENCH_PROJECT_ENTRY ?? fileURLToPath(new URL('../../websocket-server/src/main.ts', import.meta.url)),
  socketio: fileURLToPath(new URL('./servers/socketio-server.ts', import.meta.url)),
  raw: fileURLToPath(new URL('./servers/raw-ws-server.ts', import.meta.url)),
};
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** Busy and total CPU time of the whole machine so far (jiffies of every core, /proc/stat). */
/** utime + stime of process `pid`, every thread, in seconds (from /proc/<pid>/stat). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

export interface GcReport {
  gc: boolean;
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

export interface ProbeWindow {
  loopDelay: { p50: number; p99: number; max: number };
  gc: { count: number; totalMs: number; maxMs: number; long: Array<{ at: number; ms: number; kind: string }> };
  stalls: Array<{ at: number; ms: number; cpuMs: number }>;
  clock: { wallMs: number; monotonicUs: number };
}

export interface RunningServer {
  readonly target: Target;
  readonly pid: number;
  readonly url: string;
  readonly logPath: string;
  /** utime + stime of the whole process (every thread), in seconds. */
  cpuSeconds(): number;
  /** VmRSS, in bytes. */
  rssBytes(): number;
  /**
   * How long the main thread (the event loop) has waited, runnable, for a CPU (ms, from
   * /proc/<pid>/schedstat): time taken by other processes on this 2-core machine, which shows
   * up as latency without being the server's doing.
   */
  runQueueWaitMs(): number;
  gc(): Promise<GcReport>;
  window(): Promise<ProbeWindow>;
  stop(): Promise<void>;
}

export interface StartOptions {
  target: Target;
  env: Record<string, string | undefined>;
  logPath: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export async function startServer({ target, env, logPath, nodeArgs = [] }: StartOptions): Promise<RunningServer> {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = fork(ENTRIES[target], [], {
      env: { ...process.env, ...env } as NodeJS.ProcessEnv,
      execArgv: ['--expose-gc', '--import', PROBE, '--import', 'tsx', ...nodeArgs],
      stdio: ['ignore', log, log, 'ipc'],
    });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 1;
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${target} server did not start in 30 s; see ${logPath}`)), 30_000);
    child.on('message', (message: unknown) => {
      if (typeof message !== 'object' || message === null) return;
      const m = message as { type?: string; port?: number; probe?: string; id?: number };
      if (m.type === 'listening' && typeof m.port === 'number') {
        clearTimeout(timer);
        resolve(m.port);
      } else if (m.probe && typeof m.id === 'number') {
        pending.get(m.id)?.(m);
        pending.delete(m.id);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${target} server exited with ${code} before listening; see ${logPath}`));
    });
  });
  const pid = child.pid!;
  const ask = <T>(probe: string) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => reject(new Error(`${target} probe '${probe}' did not answer`)), 30_000);
      pending.set(id, (value) => {
        clearTimeout(timer);
        resolve(value as T);
      });
      child.send({ probe, id });
    });

  return {
    target,
    pid,
    url: `ws://127.0.0.1:${port}`,
    logPath,
    cpuSeconds: () => processCpuSeconds(pid),
    rssBytes() {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return Number(match?.[1] ?? NaN) * 1024;
    },
    runQueueWaitMs() {
      const [, waitNs] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ');
      return Number(waitNs) / 1e6;
    },
    gc: () => ask<GcReport>('gc'),
    window: () => ask<ProbeWindow>('window'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
