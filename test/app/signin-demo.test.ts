/**
 * The sign-in page lists the demo accounts only on the demo: `npm start` (scripts/start.ts) on
 * the embedded database seeds them and sets FONANA_DEMO=1 for the app; with a real DATABASE_URL
 * and no SEED_DEMO=1 it does not, whatever FONANA_DEMO the environment held. The whole chain
 * runs for real: start.ts (with a temp FONANA_DATA_DIR and the e2e build as NEXT_DIST_DIR), its
 * WebSocket server and `next start`, then GET /signin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { E2E_DIST_DIR, ensureAppBuilt } from '../e2e/support/next-app.ts';
import { testDatabaseUrl } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { repoRoot } from '../ops/support/paths.ts';

const DEMO_LINE = 'data-testid="demo-accounts"';

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** `node --import tsx scripts/start.ts` in its own process group, until it says "ready". */
async function startScript(env: Record<string, string>): Promise<Started> {
  const port = await freePort();
  // Only what is named here (no DATABASE_URL, REDIS_URL, FONANA_DEMO or NODE_ENV of the tests).
  const vars: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmpdir(),
    NEXT_DIST_DIR: E2E_DIST_DIR,
    PORT: String(port),
    WS_PORT: '0',
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts/start.ts')], {
    cwd: repoRoot,
    env: vars as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 90_000;
  while (!/\[start\] ready:/.test(output)) {
    if (child.exitCode !== null) throw new Error(`start.ts exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`start.ts not ready in 90 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output };
}

/** SIGTERM (start.ts stops its children and the database), then SIGKILL to the whole group. */
async function stopScript(started: Started | undefined): Promise<void> {
  const child = started?.child;
  if (!child?.pid) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is gone: every child stopped with it.
  }
}

async function signInPage(url: string): Promise<string> {
  const response = await fetch(`${url}/signin`);
  expect(response.status).to.equal(200);
  const html = await response.text();
  // Positive control: this is the sign-in page.
  expect(html).to.include('data-testid="signin-form"');
  return html;
}

describe('sign-in page: demo accounts only on the demo (scripts/start.ts → FONANA_DEMO → app/signin)', function () {
  this.timeout(120_000);
  let dataDir: string;
  let started: Started | undefined;

  before(async function () {
    this.timeout(240_000);
    await ensureAppBuilt();
    dataDir = await mkdtemp(path.join(tmpdir(), 'fonana-demo-'));
  });

  afterEach(async function () {
    this.timeout(30_000);
    await stopScript(started);
    started = undefined;
  });

  after(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('embedded database (no DATABASE_URL): seeded, and the page lists the demo accounts', async function () {
    started = await startScript({ FONANA_DATA_DIR: path.join(dataDir, 'embedded') });
    expect(started.output()).to.include('demo data ready');
    const html = await signInPage(started.url);
    expect(html).to.include(DEMO_LINE);
    expect(html).to.include('alice@example.com');
  });

  it('a real DATABASE_URL without SEED_DEMO=1: no demo line, even with FONANA_DEMO=1 in the environment', async function () {
    started = await startScript({
      FONANA_DATA_DIR: path.join(dataDir, 'external'),
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_POOL_MAX: '2',
      FONANA_DEMO: '1',
    });
    expect(started.output()).not.to.include('demo data ready');
    const html = await signInPage(started.url);
    expect(html).not.to.include(DEMO_LINE);
    expect(html).not.to.include('Demo accounts');
  });
});
