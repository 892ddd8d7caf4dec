/**
 * The operator scripts, run as an operator would: setup-websocket-server.sh against the run's
 * scratch database and Redis (twice: it must be safe to repeat), health-check.sh against a live
 * server, a degraded one and a dead port, and deploy.sh with a PM2 daemon of its own.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { cleanEnv, repoRoot } from './support/paths.ts';
import { isAlive, Pm2 } from './support/pm2.ts';
import { freePort } from '../support/ports.ts';
import { run } from './support/run.ts';
import { until } from './support/wait.ts';

const script = (name: string) => path.join(repoRoot, 'scripts', name);

describe('operator scripts', function () {
  this.timeout(120_000);

  let scratch: string;
  let envFile: string;
  let distDir: string;

  before(async function () {
    scratch = await mkdtemp(path.join(tmpdir(), 'fonana-ops-'));
    // An empty ENV_FILE, so a developer's ./.env never leaks into these runs.
    envFile = path.join(scratch, 'empty.env');
    await writeFile(envFile, '');
    // A build directory of this run's own (see support/build.ts for why not websocket-server/dist).
    distDir = `websocket-server/dist/test-${randomBytes(4).toString('hex')}`;
  });

  after(async function () {
    await rm(scratch, { recursive: true, force: true });
    await rm(path.join(repoRoot, distDir), { recursive: true, force: true });
  });

  /** The environment an operator would export, against this test run's services. */
  function opsEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    return cleanEnv({
      NO_COLOR: '1',
      ENV_FILE: envFile,
      TMPDIR: scratch,
      // deploy.sh's releases, links, logs and lock, removed with the rest.
      DEPLOY_ROOT: path.join(scratch, 'deploy'),
      WS_DIST_DIR: distDir,
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('scripts:'),
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      // Required in production (the deploy runs the server with NODE_ENV=production).
      ALLOWED_ORIGINS: 'https://fonana.test',
      ...extra,
    });
  }

  describe('setup-websocket-server.sh', function () {
    it('checks, migrates and builds; a second run succeeds too', async function () {
      for (const round of [1, 2]) {
        const result = await run('bash', [script('setup-websocket-server.sh')], { env: opsEnv(), timeoutMs: 120_000 });
        expect(result.code, `round ${round}\n${result.stdout}\n${result.stderr}`).to.equal(0);
        expect(result.stdout).to.match(/Redis reachable: PONG/);
        expect(result.stdout).to.match(/database reachable/);
        expect(result.stdout).to.match(/database is up to date|applied \d+ migration/);
        expect(result.stdout).to.match(/the build loads/);
        expect(result.stdout).to.match(/Ready\. Next:/);
      }
      expect(existsSync(path.join(repoRoot, distDir, 'websocket-server/src/main.js'))).to.equal(true);
    });

    it('stops before changing anything when a required variable is missing', async function () {
      const result = await run('bash', [script('setup-websocket-server.sh')], {
        env: opsEnv({ NEXTAUTH_SECRET: undefined, WS_DIST_DIR: `${distDir}-never` }),
      });
      expect(result.code).to.not.equal(0);
      expect(result.stderr).to.match(/NEXTAUTH_SECRET is not set/);
      expect(result.stdout).not.to.match(/Build/);
      expect(existsSync(path.join(repoRoot, `${distDir}-never`))).to.equal(false);
    });

    it('fails when Redis or the database does not answer', async function () {
      const deadPort = await freePort();
      const noRedis = await run('bash', [script('setup-websocket-server.sh'), '--check'], { env: opsEnv({ REDIS_URL: `redis://127.0.0.1:${deadPort}` }) });
      expect(noRedis.code).to.not.equal(0);
      expect(noRedis.stderr).to.match(/Redis at REDIS_URL is not reachable/);
      const noDb = await run('bash', [script('setup-websocket-server.sh'), '--check'], {
        env: opsEnv({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${deadPort}/nothing` }),
      });
      expect(noDb.code).to.not.equal(0);
      expect(noDb.stderr).to.match(/database at DATABASE_URL is not reachable/);
    });

    it('reads missing variables from ENV_FILE without overriding the environment', async function () {
      const file = path.join(scratch, 'ops.env');
      await writeFile(file, `# comment\nexport NEXTAUTH_SECRET="${TEST_NEXTAUTH_SECRET}"\nREDIS_URL=redis://127.0.0.1:1\nALLOWED_ORIGINS='https://fonana.test'\n`);
      const result = await run('bash', [script('setup-websocket-server.sh'), '--check'], {
        env: opsEnv({ ENV_FILE: file, NEXTAUTH_SECRET: undefined, ALLOWED_ORIGINS: undefined }),
      });
      // NEXTAUTH_SECRET and ALLOWED_ORIGINS came from the file; REDIS_URL stayed the caller's.
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.match(/loaded 2 variable\(s\)/);
      expect(result.stdout).to.match(/ALLOWED_ORIGINS=https:\/\/fonana\.test/);
      expect(result.stdout).to.match(/Redis reachable/);
    });
  });

  describe('health-check.sh', function () {
    const servers: ServerProcess[] = [];
    after(async () => Promise.all(servers.map((s) => s.stop())));

    it('exits 0 with an OK line for a healthy server', async function () {
      const server = await startServer();
      servers.push(server);
      const result = await run('bash', [script('health-check.sh'), server.httpUrl]);
      expect(result.code, result.stdout).to.equal(0);
      expect(result.stdout).to.match(/^OK fonana-ws ok \(HTTP 200\) .*redis=ready database=up/);
      const json = await run('bash', [script('health-check.sh'), `${server.httpUrl}/health`, '--json']);
      expect(JSON.parse(json.stdout)).to.include({ status: 'ok', database: 'up' });
    });

    it('exits 2 when the server is degraded (Redis unreachable)', async function () {
      const server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` } });
      servers.push(server);
      const result = await run('bash', [script('health-check.sh'), server.httpUrl]);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.match(/^CRITICAL fonana-ws degraded \(HTTP 503\)/);
    });

    it('exits 2 when nothing listens', async function () {
      const result = await run('bash', [script('health-check.sh'), `http://127.0.0.1:${await freePort()}`, '--timeout', '1000']);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.match(/^CRITICAL .*ECONNREFUSED/);
    });
  });

  describe('deploy.sh --only fonana-ws', function () {
    let pm2: Pm2;
    let port: number;
    let logDir: string;

    before(async function () {
      port = await freePort();
      logDir = path.join(scratch, 'logs');
      pm2 = await Pm2.create({ ...opsEnv(), WS_PORT: String(port), WS_HOST: '127.0.0.1', WS_INSTANCES: '2', LOG_DIR: logDir, SHUTDOWN_TIMEOUT_MS: '2000' });
    });
    after(async () => pm2?.kill());

    it('refuses to deploy without the required variables, starting nothing', async function () {
      const result = await run('bash', [script('deploy.sh'), '--only', 'fonana-ws'], { env: { ...pm2.env, DATABASE_URL: '' } });
      expect(result.code).to.not.equal(0);
      expect(result.stderr).to.match(/DATABASE_URL is not set/);
      expect(existsSync(path.join(pm2.home, 'pm2.pid')), 'a PM2 daemon was started').to.equal(false);
    });

    it('starts fonana-ws on the first run and reloads it on the second', async function () {
      // Two releases, each exported and built (tsc): ~30 s apiece here, several times that on a
      // loaded machine.
      this.timeout(600_000);
      const first = await run('bash', [script('deploy.sh'), '--only', 'fonana-ws'], { env: pm2.env, timeoutMs: 280_000 });
      expect(first.code, first.stdout + first.stderr).to.equal(0);
      expect(first.stdout).to.match(/OK fonana-ws ok/);
      const started = await pm2.list();
      expect(started.map((p) => `${p.name}:${p.status}`)).to.deep.equal(['fonana-ws:online', 'fonana-ws:online']);

      const second = await run('bash', [script('deploy.sh'), '--only', 'fonana-ws'], { env: pm2.env, timeoutMs: 280_000 });
      expect(second.code, second.stdout + second.stderr).to.equal(0);
      const reloaded = await pm2.list();
      expect(reloaded).to.have.length(2);
      for (const p of reloaded) {
        expect(p.status).to.equal('online');
        expect(started.map((s) => s.pid)).not.to.include(p.pid);
      }
      await until('the old processes to exit', () => started.every((p) => !isAlive(p.pid)));
      expect(existsSync(path.join(pm2.home, 'dump.pm2')), 'pm2 save').to.equal(true);
    });
  });
});
