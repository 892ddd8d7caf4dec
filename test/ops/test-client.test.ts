/**
 * The test-client CLI (`npm run ws:test-client`) run as a process against a server started by
 * startServer: every check passes for a normal user (token minted by email; event published
 * through Redis, then through POST /publish), and it exits non-zero when something is wrong
 * (a secret that does not match the server's, a publisher on the wrong Redis prefix) or when it
 * cannot even start (no user, no identity). Signing in through the real app is covered too.
 */
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { expect } from 'chai';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { cleanEnv, repoRoot, tsxBin } from './support/paths.ts';
import { run, type RunResult } from './support/run.ts';

type JsonReport = {
  passed: number;
  failed: number;
  skipped: number;
  results: Array<{ name: string; expected: string; got: string; status: 'PASS' | 'FAIL' | 'SKIP' }>;
};

const CLI = path.join(repoRoot, 'scripts/test-client/main.ts');
const PASSWORD = 'correct horse battery staple';

describe('ws:test-client (scripts/test-client)', function () {
  this.timeout(90_000);

  let server: ServerProcess;
  let fixtures: Fixtures;
  let email: string;

  before(async function () {
    server = await startServer();
    fixtures = new Fixtures();
    const me = await fixtures.prisma.user.create({
      data: { email: `cli-${Date.now()}@test.invalid`, name: 'CLI user', passwordHash: await bcrypt.hash(PASSWORD, 4) },
    });
    email = me.email;
    // Something for each kind of channel check to find in the database.
    const creator = await fixtures.creator('cli-creator');
    await fixtures.post(creator.id);
    await fixtures.post(creator.id, { isLocked: true, requiredTier: 'VIP' });
  });

  after(async function () {
    await server?.stop();
    await fixtures?.close();
  });

  /** Runs the CLI as `npm run ws:test-client` does (tsx), with the environment given. */
  function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
    return run(process.execPath, [tsxBin, CLI, ...args], {
      cwd: repoRoot,
      env: cleanEnv({
        NO_COLOR: '1',
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: undefined,
        REDIS_CHANNEL_PREFIX: undefined,
        WS_PUBLISH_SECRET: undefined,
        WS_PUBLISH_URL: undefined,
        WS_PORT: undefined,
        ...env,
      }),
      timeoutMs: 60_000,
    });
  }

  const jsonReport = (result: RunResult): JsonReport => JSON.parse(result.stdout) as JsonReport;

  it('passes every check for a user minted by email, publishing through Redis', async function () {
    const result = await cli(['--email', email, '--url', `${server.url}/ws`], {
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:'),
    });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/test-client: \d+ passed, 0 failed, 0 skipped/);
    for (const row of [
      /bad token is refused\s+close 4001\s+closed 4001.*PASS/,
      /own notifications .*subscribed\s+subscribed\s+PASS/,
      /someone else’s notifications .*error forbidden\s+error forbidden\s+PASS/,
      /a creator .*PASS/,
      /a public post .*PASS/,
      /a locked post it may not read .*error forbidden\s+error forbidden\s+PASS/,
      /an unknown channel kind .*error invalid_channel\s+error invalid_channel\s+PASS/,
      /published event is delivered .*Redis.*PASS|published event is delivered .*node\(s\) subscribed in Redis/,
      /ping\s+pong\s+pong in \d+ ms\s+PASS/,
    ]) {
      expect(result.stdout).to.match(row);
    }
  });

  it('publishes through POST /publish without Redis, and reports JSON with --json', async function () {
    const result = await cli(['--email', email, '--url', `${server.url}/ws`, '--json'], { WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    const report = jsonReport(result);
    expect(report.failed).to.equal(0);
    const delivery = report.results.find((r) => r.name === 'published event is delivered');
    expect(delivery).to.include({ status: 'PASS' });
    expect(delivery?.got).to.match(/HTTP 202/);
  });

  it('exits 1 and shows FAIL rows when the server rejects the session (secret mismatch)', async function () {
    const result = await cli(['--email', email, '--url', `${server.url}/ws`], { NEXTAUTH_SECRET: 'not-the-servers-secret' });
    expect(result.code).to.equal(1);
    expect(result.stdout).to.match(/connect with the session\s+connected\s+closed 4001.*FAIL/);
    expect(result.stdout).to.match(/test-client: \d+ passed, 1 failed/);
  });

  it('exits 1 when a published event never arrives (wrong Redis prefix)', async function () {
    const result = await cli(['--email', email, '--url', `${server.url}/ws`, '--timeout', '1500', '--json'], {
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('elsewhere:'),
    });
    expect(result.code).to.equal(1);
    const delivery = jsonReport(result).results.find((r) => r.name === 'published event is delivered');
    expect(delivery?.status).to.equal('FAIL');
    expect(delivery?.got).to.match(/0 node\(s\)|nothing in 1500 ms/);
  });

  it('exits 2 when it cannot get a session: unknown email, or no identity at all', async function () {
    const unknown = await cli(['--email', 'nobody@test.invalid', '--url', `${server.url}/ws`]);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/no user with email nobody@test\.invalid/);
    const none = await cli(['--url', `${server.url}/ws`]);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.match(/give --email/);
  });

  describe('signing in through the app (--app-url)', function () {
    let app: AppProcess | undefined;

    before(async function () {
      this.timeout(240_000);
      await ensureAppBuilt();
      app = await startApp({
        DATABASE_URL: testDatabaseUrl(),
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
        WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
        WS_PUBLISH_URL: server.httpUrl,
        REDIS_URL: undefined,
      });
    });
    after(async () => app?.stop());

    it('uses the session cookie set by the credentials sign-in and passes', async function () {
      const result = await cli(['--app-url', app!.url, '--email', email, '--password', PASSWORD, '--url', `${server.url}/ws`, '--json'], {
        // No secret and no database: everything comes from the sign-in, as against a deployment.
        NEXTAUTH_SECRET: undefined,
        DATABASE_URL: undefined,
        WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      });
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      const report = jsonReport(result);
      expect(report.failed).to.equal(0);
      // Without a database the creator and post checks have no ids: skipped, not failed.
      expect(report.results.filter((r) => r.status === 'SKIP').map((r) => r.name)).to.have.members([
        'a creator',
        'a public post',
        'a locked post it may not read',
      ]);
    });

    it('exits 2 when the app refuses the password', async function () {
      const result = await cli(['--app-url', app!.url, '--email', email, '--password', 'wrong', '--url', `${server.url}/ws`]);
      expect(result.code).to.equal(2);
      expect(result.stderr).to.match(/sign-in as .* was refused/);
    });
  });
});
