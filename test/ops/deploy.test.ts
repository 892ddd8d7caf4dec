/**
 * deploy.sh and rollback.sh as an operator runs them, in a DEPLOY_ROOT of their own (a temp dir)
 * with a PM2 daemon of their own (PM2_HOME), this run's scratch database, free ports and a Redis
 * prefix of their own. fonana-ws runs two processes in cluster mode; the Next.js app is not
 * deployed here (`--only fonana-ws`: its build is the slow part, and what clients see of a
 * rollback is the WebSocket server; test/ops/deploy-app.test.ts deploys the app with it).
 *
 * 1. A good release (HEAD of this checkout) goes live and passes /health and the test client.
 * 2. A broken one (HEAD with a fault written into its copy, never into the repository: the
 *    feed channel refuses its owner) is healthy by /health but fails the test client: deploy.sh
 *    exits 1, `current` is the good release again, and clients connected throughout were moved
 *    to the broken release and back (1001 each time) and receive an event published after.
 * 3. A second good deploy: `previous` is the first, the broken one is pruned (KEEP_RELEASES=2).
 * 4. rollback.sh returns to the first in one command; clients reconnect and receive events.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';
import { repoRoot } from './support/paths.ts';
import { Pm2 } from './support/pm2.ts';
import { publishFeedUpdate } from './support/publish.ts';
import { ReconnectingClient } from './support/reconnecting-client.ts';
import { run, runOk, type RunResult } from './support/run.ts';
import { until } from './support/wait.ts';

const INSTANCES = 2;
const CLIENTS = 3;
const ORIGIN = 'https://fonana.test';
const FEED_POLICY = 'websocket-server/src/channels/feed.ts';
const SERVER_MAIN = 'websocket-server/src/main.ts';

describe('deploy.sh and rollback.sh (releases, automatic rollback)', function () {
  // Three releases are built (tsc, ~10 s each here when the machine is idle, over a minute
  // when it is loaded) and four reloads of two processes each.
  this.timeout(480_000);

  let scratch: string;
  let deployRoot: string;
  let pm2: Pm2;
  let httpUrl: string;
  let wsUrl: string;
  let fixtures: Fixtures;
  let channel: string;
  let tokens: string[];
  const clients: ReconnectingClient[] = [];
  /** Release ids in the order they were deployed: good, broken, good. */
  const ids: string[] = [];
  /** How long each script run took, printed at the end. */
  const timings: string[] = [];

  before(async function () {
    scratch = await mkdtemp(path.join(tmpdir(), 'fonana-deploy-'));
    deployRoot = path.join(scratch, 'root');
    const envFile = path.join(scratch, 'empty.env');
    await writeFile(envFile, '');
    const port = await freePort();
    httpUrl = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/ws`;
    fixtures = new Fixtures();
    const checker = await fixtures.user({ name: 'deploycheck' });
    const post = await fixtures.post((await fixtures.creator('deploycreator')).id);
    channel = channelName.post(post.id);
    const users = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => fixtures.user({ name: `deploy${i}` })));
    tokens = await Promise.all(users.map((u) => mintSessionToken(u.id)));
    pm2 = await Pm2.create({
      NO_COLOR: '1',
      // An empty ENV_FILE, so a developer's ./.env never leaks into these runs.
      ENV_FILE: envFile,
      DEPLOY_ROOT: deployRoot,
      KEEP_RELEASES: '2',
      DEPLOY_CHECK_EMAIL: checker.email,
      WS_PORT: String(port),
      WS_HOST: '127.0.0.1',
      WS_INSTANCES: String(INSTANCES),
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix(`deploy-${randomBytes(3).toString('hex')}:`),
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      // Required in production (ecosystem.config.js sets NODE_ENV=production).
      ALLOWED_ORIGINS: ORIGIN,
      // Short drains keep each reload quick; kill_timeout follows from it.
      SHUTDOWN_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
    });
  });

  after(async function () {
    this.timeout(60_000);
    if (timings.length > 0) console.log(`      ${timings.join('; ')}; close codes per client: ${clients.map((c) => c.closeCodes.join(',')).join(' | ')}`);
    for (const client of clients) client.stop();
    await pm2?.kill();
    await fixtures?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  const script = (name: string) => path.join(repoRoot, 'scripts', name);
  const timed = async (label: string, result: Promise<RunResult>) => {
    const done = await result;
    timings.push(`${label} ${(done.ms / 1000).toFixed(1)} s (exit ${done.code})`);
    return done;
  };
  const deploy = (label: string, ...args: string[]) =>
    timed(label, run('bash', [script('deploy.sh'), '--only', 'fonana-ws', ...args], { env: pm2.env, timeoutMs: 400_000 }));
  const linked = async (name: 'current' | 'previous') => path.basename(await readlink(path.join(deployRoot, name)));
  const output = (result: RunResult) => `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;

  /** HEAD exported into scratch/<name>, then `from` replaced by `to` in `file` of that copy
   * only: the repository is never touched. */
  async function faultySource(name: string, file: string, from: string, to: string): Promise<string> {
    const source = path.join(scratch, name);
    await mkdir(source);
    await runOk('bash', ['-c', `git -C "${repoRoot}" archive HEAD | tar -x -C "${source}"`]);
    const original = await readFile(path.join(source, file), 'utf8');
    const faulty = original.replace(from, to);
    expect(faulty, `the fault was injected into ${file}`).to.not.equal(original);
    await writeFile(path.join(source, file), faulty);
    return source;
  }

  /** Every fonana-ws process is online and runs from releases/<id> (its working directory). */
  async function expectRunning(id: string): Promise<number[]> {
    const processes = (await pm2.list()).filter((p) => p.name === 'fonana-ws');
    expect(processes.map((p) => p.status)).to.deep.equal(Array(INSTANCES).fill('online'));
    const dir = await realpath(path.join(deployRoot, 'releases', id));
    for (const p of processes) {
      // PM2 starts the script through `current`, never through a release's own path.
      expect(p.execPath).to.equal(path.join(deployRoot, 'current/websocket-server/dist/websocket-server/src/main.js'));
      expect(await realpath(`/proc/${p.pid}/cwd`), `pid ${p.pid}`).to.equal(dir);
    }
    return processes.map((p) => p.pid);
  }

  /** Waits until client i has seen `closes[i]` closes (or `closes`, for all) and is subscribed
   * again, then checks that an event published now reaches each of them. */
  async function expectClientsBack(closes: number | number[]): Promise<void> {
    const wanted = (i: number) => (typeof closes === 'number' ? closes : closes[i]!);
    await until(`every client to reconnect after ${String(closes)} close(s)`, () => clients.every((c, i) => c.closeCodes.length >= wanted(i) && c.readyAt > 0), 30_000);
    for (const client of clients) expect(client.closeCodes.every((code) => code === 1001), `close codes ${client.closeCodes.join(',')}`).to.equal(true);
    const postId = await publishFeedUpdate(httpUrl, channel);
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'feed_update' && (f.data as { postId?: string }).postId === postId, 10_000)));
  }

  it('deploys a good release (HEAD): current points at it, every process runs from it, /health and the test client pass', async function () {
    const result = await deploy('deploy good');
    expect(result.code, output(result)).to.equal(0);
    const id = await linked('current');
    // <UTC time>-<short commit>, the commit HEAD was when the deploy exported it.
    const short = /^\d{8}T\d{6}Z-([0-9a-f]{7,})$/.exec(id)?.[1];
    expect(short, id).to.be.a('string');
    const commit = /^commit=([0-9a-f]{40})$/m.exec(readFileSync(path.join(deployRoot, 'releases', id, '.release'), 'utf8'))?.[1];
    expect(commit?.startsWith(short!), `${commit} vs ${id}`).to.equal(true);
    expect((await runOk('git', ['-C', repoRoot, 'cat-file', '-t', commit!])).stdout.trim()).to.equal('commit');
    ids.push(id);
    expect(result.stdout).to.match(/node_modules hardlinked/);
    expect(result.stdout).to.match(/OK fonana-ws ok .*\(2 of 2 process\(es\) healthy\)/);
    expect(result.stdout).to.match(/test client: every check passed/);
    await expectRunning(id);

    for (const token of tokens) {
      const client = new ReconnectingClient(wsUrl, channel, { token, via: 'cookie', origin: ORIGIN });
      clients.push(client);
      await client.start();
    }
    // Positive control: the clients receive what is published before any other deploy.
    await expectClientsBack(0);
  });

  it('rolls back by itself when the new release fails the test client: exit 1, current is the good release again, clients reconnect and receive events', async function () {
    const before = await expectRunning(ids[0]!);
    // The broken release: its feed policy refuses the feed's owner (healthy by /health).
    const source = await faultySource('broken-src', FEED_POLICY, 'principal.userId === userId', 'principal.userId === `deliberately-broken-${userId}`');

    const result = await deploy('deploy broken + automatic rollback', '--source', source);
    expect(result.code, output(result)).to.equal(1);
    const broken = (await readdir(path.join(deployRoot, 'releases'))).find((id) => id.endsWith('-broken-src'));
    expect(broken, `the broken release directory\n${output(result)}`).to.be.a('string');
    ids.push(broken!);
    // It did go live: its processes ran and were healthy, and the test client caught the fault.
    expect(result.stdout).to.match(new RegExp(`pid\\(s\\) .* run from releases/${broken}`));
    expect(result.stderr).to.match(/own feed .*error forbidden\s+FAIL/);
    expect(result.stderr).to.match(new RegExp(`rolled back to releases/${ids[0]}, which is healthy again`));
    // The release it returned to was checked the same way, test client included.
    expect(result.stdout.slice(result.stdout.indexOf(`Rolling back to releases/${ids[0]}`))).to.match(/test client: every check passed/);
    expect(await readFile(path.join(deployRoot, 'releases', broken!, '.failed'), 'utf8')).to.match(/test client's checks failed/);
    expect(await linked('current')).to.equal(ids[0]);
    // New processes of the good release (the ones before were replaced twice).
    const after = await expectRunning(ids[0]!);
    expect(after.filter((pid) => before.includes(pid))).to.deep.equal([]);
    // Each client was closed at least once by each reload (to the broken release, then back).
    await expectClientsBack(2);
  });

  it('a second good deploy records the first as previous and prunes the broken one (KEEP_RELEASES=2)', async function () {
    const closes = clients.map((c) => c.closeCodes.length + 1);
    const result = await deploy('deploy good again');
    expect(result.code, output(result)).to.equal(0);
    const id = await linked('current');
    ids.push(id);
    expect(id).to.not.equal(ids[0]);
    expect(await linked('previous')).to.equal(ids[0]);
    expect((await readdir(path.join(deployRoot, 'releases'))).sort()).to.deep.equal([ids[0], id].sort());
    expect(result.stdout).to.match(new RegExp(`pruned ${ids[1]}`));
    await expectRunning(id);
    await expectClientsBack(closes);
  });

  it('rollback.sh returns to the previous release in one command; clients reconnect and receive events', async function () {
    const closes = clients.map((c) => c.closeCodes.length + 1);
    const result = await timed('rollback.sh', run('bash', [script('rollback.sh'), '--only', 'fonana-ws'], { env: pm2.env, timeoutMs: 120_000 }));
    expect(result.code, output(result)).to.equal(0);
    expect(result.stdout).to.match(/test client: every check passed/);
    expect(await linked('current')).to.equal(ids[0]);
    // previous is the release it left: a second rollback.sh would undo this one.
    expect(await linked('previous')).to.equal(ids[2]);
    await expectRunning(ids[0]!);
    await expectClientsBack(closes);
  });

  it('never switches to a release whose server does not start: exit 1, current and the running processes unchanged, clients not disconnected', async function () {
    const running = await linked('current');
    const pids = await expectRunning(running);
    const closes = clients.map((c) => c.closeCodes.length);
    // Builds and loads (the smoke test imports every module but main.js), then throws at start.
    const source = await faultySource(
      'crashing-src',
      SERVER_MAIN,
      'async function main(): Promise<void> {\n',
      "async function main(): Promise<void> {\n  if (process.env.NODE_ENV === 'production') throw new Error('deliberately broken release: the server does not start');\n",
    );
    const result = await deploy('deploy crashing (refused before the switch)', '--source', source);
    expect(result.code, output(result)).to.equal(1);
    const crashing = (await readdir(path.join(deployRoot, 'releases'))).find((id) => id.endsWith('-crashing-src'));
    expect(crashing, `the crashing release directory\n${output(result)}`).to.be.a('string');
    expect(result.stdout).to.match(/the build loads/);
    expect(result.stderr, output(result)).to.match(/the release's server does not start healthy/);
    expect(result.stderr).to.match(/deliberately broken release/);
    expect(result.stderr).to.match(/nothing running was changed/);
    expect(result.stdout).not.to.match(/==> PM2/);
    expect(await readFile(path.join(deployRoot, 'releases', crashing!, '.failed'), 'utf8')).to.match(/before the switch/);
    expect(await linked('current')).to.equal(running);
    expect(await expectRunning(running), 'the same processes').to.deep.equal(pids);
    // An event published now arrives on the connections that were open before: none was closed.
    await expectClientsBack(0);
    expect(clients.map((c) => c.closeCodes.length)).to.deep.equal(closes);
  });
});
