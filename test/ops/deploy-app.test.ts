/**
 * deploy.sh's full path, the app included (test/ops/deploy.test.ts deploys fonana-ws alone):
 * a release with the Next.js app, the outbox relay and fonana-ws goes live under PM2 from
 * `current`, passes its checks (every fonana-ws process from the release, /health, the test
 * client, the app answering), and the app serves from the release: its /api/health reports the
 * WebSocket server of the same deploy. The Next.js build is the end-to-end tests' own, handed
 * over with --next-build (made from the same sources; a `next build` in the release would add
 * about a minute and test Next.js, not the deploy).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { E2E_DIST_DIR, ensureAppBuilt } from '../e2e/support/next-app.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { repoRoot } from './support/paths.ts';
import { Pm2 } from './support/pm2.ts';
import { run } from './support/run.ts';
import { until } from './support/wait.ts';

describe('deploy.sh with the app (fonana, fonana-outbox and fonana-ws from one release)', function () {
  this.timeout(480_000);

  let scratch: string;
  let deployRoot: string;
  let pm2: Pm2;
  let appUrl: string;
  let fixtures: Fixtures;

  before(async function () {
    await ensureAppBuilt();
    scratch = await mkdtemp(path.join(tmpdir(), 'fonana-deploy-app-'));
    deployRoot = path.join(scratch, 'root');
    const envFile = path.join(scratch, 'empty.env');
    await writeFile(envFile, '');
    const [wsPort, appPort] = [await freePort(), await freePort()];
    appUrl = `http://127.0.0.1:${appPort}`;
    fixtures = new Fixtures();
    const checker = await fixtures.user({ name: 'deployappcheck' });
    pm2 = await Pm2.create({
      NO_COLOR: '1',
      // An empty ENV_FILE, so a developer's ./.env never leaks into this run.
      ENV_FILE: envFile,
      DEPLOY_ROOT: deployRoot,
      DEPLOY_CHECK_EMAIL: checker.email,
      WS_PORT: String(wsPort),
      WS_HOST: '127.0.0.1',
      WS_INSTANCES: '1',
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix(`deploy-app-${randomBytes(3).toString('hex')}:`),
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      ALLOWED_ORIGINS: appUrl,
      PORT: String(appPort),
      NEXTAUTH_URL: appUrl,
      // The release serves the build from the same relative directory it was made in.
      NEXT_DIST_DIR: E2E_DIST_DIR,
      WS_PUBLISH_URL: `http://127.0.0.1:${wsPort}`,
      SHUTDOWN_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
    });
  });

  after(async function () {
    this.timeout(60_000);
    await pm2?.kill();
    await fixtures?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('goes live from current, every app online from the release, and the app reports the deploy’s WebSocket server healthy', async () => {
    const result = await run('bash', [path.join(repoRoot, 'scripts/deploy.sh'), '--next-build', path.join(repoRoot, E2E_DIST_DIR), '--no-save'], {
      env: pm2.env,
      timeoutMs: 400_000,
    });
    expect(result.code, `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`).to.equal(0);
    expect(result.stdout + result.stderr).to.match(/fonana answers at/);

    const release = await realpath(path.join(deployRoot, 'current'));
    expect(path.dirname(release)).to.equal(await realpath(path.join(deployRoot, 'releases')));
    expect(path.basename(await readlink(path.join(deployRoot, 'current')))).to.equal(path.basename(release));
    const processes = await pm2.list();
    expect(processes.map((p) => `${p.name}:${p.status}`).sort()).to.deep.equal(['fonana-outbox:online', 'fonana-ws:online', 'fonana:online']);
    // Each runs in the release, not in this checkout.
    for (const p of processes) expect(await realpath(`/proc/${p.pid}/cwd`), p.name).to.equal(release);

    const health = await until('the app’s /api/health to report the WebSocket server', async () => {
      const response = await fetch(`${appUrl}/api/health`, { signal: AbortSignal.timeout(2_000) }).catch(() => null);
      if (response?.status !== 200) return null;
      return (await response.json()) as { status: string; websocket?: { status?: string } };
    }, 30_000);
    expect(health.status).to.equal('ok');
    expect(health.websocket?.status).to.equal('ok');
  });
});
