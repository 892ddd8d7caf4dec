/**
 * The real Next.js app for tests: built once into its own distDir (.next/e2e, so it never
 * clashes with a developer's `.next` or the `.next/dev` of `next dev`), then started with
 * `next start` on a free port. Each test file starts its own app and stops it in `after`.
 *
 * The build is reused while it is newer than every source it depends on; E2E_REBUILD=1 forces
 * one. (Measured here: a cold build ~20 s, `next start` ready in ~0.5 s.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../support/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NEXT_BIN = path.join(ROOT, 'node_modules/next/dist/bin/next');
// E2E_DIST_DIR=.next/e2e-<name> gives a run its own build, so two test runs in one checkout
// (two developers' terminals, say) never rebuild under each other.
export const E2E_DIST_DIR = process.env.E2E_DIST_DIR || '.next/e2e';

const SOURCES = [
  'app',
  'components',
  'hooks',
  'lib',
  'types',
  // The app imports the protocol, the broker's history script and the access rules from here
  // (and they import their neighbours): any change in the server's sources rebuilds.
  'websocket-server/src',
  'generated',
  'next.config.ts',
  'tsconfig.json',
  'tsconfig.next.json',
  'package-lock.json',
];

function newestMtime(entry: string): number {
  const full = path.join(ROOT, entry);
  if (!existsSync(full)) return 0;
  const stat = statSync(full);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const child of readdirSync(full)) newest = Math.max(newest, newestMtime(path.join(entry, child)));
  return newest;
}

function isBuildFresh(): boolean {
  const buildId = path.join(ROOT, E2E_DIST_DIR, 'BUILD_ID');
  if (process.env.E2E_REBUILD === '1' || !existsSync(buildId)) return false;
  const builtAt = statSync(buildId).mtimeMs;
  return SOURCES.every((entry) => newestMtime(entry) < builtAt);
}

function nextEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NEXT_DIST_DIR: E2E_DIST_DIR, ...extra } as NodeJS.ProcessEnv;
}

let building: Promise<{ built: boolean; ms: number }> | undefined;

/** Builds the app unless a fresh build exists; once per test run however many files ask. */
export function ensureAppBuilt(): Promise<{ built: boolean; ms: number }> {
  building ??= (async () => {
    if (isBuildFresh()) return { built: false, ms: 0 };
    const started = Date.now();
    let log = '';
    const child = spawn(process.execPath, [NEXT_BIN, 'build'], { cwd: ROOT, env: nextEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`next build failed (${code}):\n${log.slice(-4000)}`);
    return { built: true, ms: Date.now() - started };
  })();
  return building;
}

export interface AppProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly log: () => string;
  stop(): Promise<void>;
}

/**
 * Starts `next start` with `env` (DATABASE_URL, NEXTAUTH_SECRET, … see lib/env.ts) on a free
 * port and waits for /api/health. NEXTAUTH_URL defaults to the app's own URL.
 */
export async function startApp(env: Record<string, string | undefined>, port?: number): Promise<AppProcess> {
  const appPort = port ?? (await freePort());
  const url = `http://127.0.0.1:${appPort}`;
  const child = spawn(process.execPath, [NEXT_BIN, 'start', '-p', String(appPort), '-H', '127.0.0.1'], {
    cwd: ROOT,
    env: nextEnv({ NEXTAUTH_URL: url, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited with ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2_000) })).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`next start not ready in 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port: appPort, child, log: () => log, stop };
}
