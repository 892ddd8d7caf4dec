/**
 * Every code block of API_INTEGRATION_GUIDE.md is run or checked here, against a real server,
 * Redis and the scratch database. A block must carry a `<!-- check: NAME … -->` marker and NAME
 * must have a check below; a block without one fails the first test, so the guide cannot grow
 * an unexercised sample.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  controlMessageSchema,
  EVENT_TYPES,
  eventAllowedOn,
  isReservedChannel,
  parseChannel,
  publishRequestSchema,
  publishedEventSchema,
} from '../../websocket-server/src/protocol/index.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ControlRecorder } from '../app/support/auth-flow.ts';
import { startRelay, type RelayProcess } from '../app/support/outbox-relay.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Block {
  check: string;
  lang: string;
  code: string;
}

async function guideBlocks(): Promise<{ blocks: Block[]; unmarked: string[] }> {
  const text = await readFile(join(ROOT, 'API_INTEGRATION_GUIDE.md'), 'utf8');
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const unmarked: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const code = lines.slice(i + 1, end).join('\n');
    const marker = /^<!-- check: ([\w-]+)/.exec(lines[i - 1] ?? '');
    // Diagrams (```text) are not code.
    if (open[1] !== 'text') {
      if (marker) blocks.push({ check: marker[1]!, lang: open[1]!, code });
      else unmarked.push(`line ${i + 1}: ${code.split('\n')[0]}`);
    }
    i = end;
  }
  return { blocks, unmarked };
}

function run(command: string, args: string[], env: Record<string, string>, cwd = ROOT) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; child: ReturnType<typeof spawn> }>((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, child });
    });
  });
}

describe('API_INTEGRATION_GUIDE.md', () => {
  let blocks: Block[];
  let server: ServerProcess;
  let fixtures: Fixtures;
  let watcher: TestClient;
  let tmp: string;
  let env: Record<string, string>;
  /** Publishes what the app helpers' blocks enqueue (the outbox), through this run's Redis. */
  let relay: RelayProcess;

  const block = (name: string) => {
    const found = blocks.find((b) => b.check === name);
    if (!found) throw new Error(`no block marked ${name}`);
    return found;
  };

  before(async () => {
    ({ blocks } = await guideBlocks());
    fixtures = new Fixtures();
    server = await startServer();
    const alice = await fixtures.creator('alice');
    // The guide's examples use post 42; the scratch database is this run's own.
    await fixtures.prisma.post.create({ data: { id: '42', authorId: alice.id, title: 'Hello', content: 'c' } });
    const reader = await fixtures.user({ name: 'reader' });
    watcher = await TestClient.connect(server.url, { token: await mintSessionToken(reader.id) });
    await watcher.mustSubscribe('post_42');
    tmp = await mkdtemp(join(ROOT, 'test/docs/.run-'));
    env = {
      REDIS_URL: testRedisUrl(),
      REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:'),
      WS_HTTP_URL: server.httpUrl,
      WS_URL: server.url,
      WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    };
    relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: env.REDIS_CHANNEL_PREFIX });
  });
  after(async () => {
    await relay?.stop();
    watcher?.close();
    await server?.stop();
    await fixtures?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('marks every code block with the check that exercises it', async () => {
    const { unmarked } = await guideBlocks();
    expect(unmarked).to.deep.equal([]);
    const known = [
      'publisher-helpers',
      'redis-cli',
      'curl',
      'python',
      'event-examples',
      'node-client',
      'hook-usage',
      'control-examples',
      'control-helpers',
      'control-redis-cli',
      'control-curl',
      'broadcast-redis-cli',
      'broadcast-curl',
    ];
    expect(blocks.map((b) => b.check).filter((c) => !known.includes(c))).to.deep.equal([]);
  });

  it('redis-cli: the published event reaches a subscriber', async () => {
    const result = await run('bash', ['-c', block('redis-cli').code], env);
    expect(result.code, result.stderr).to.equal(0);
    const push = await watcher.next((f) => f.type === 'post_liked' && (f.data as { likesCount: number }).likesCount === 3);
    expect(push.channel).to.equal('post_42');
  });

  it('curl: POST /publish answers 202 and the event reaches a subscriber', async () => {
    const result = await run('bash', ['-c', `${block('curl').code} -w ' %{http_code}'`], env);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/ 202$/);
    await watcher.next((f) => f.type === 'comment_deleted');
  });

  it('broadcast-redis-cli and broadcast-curl: a socket that never subscribed to broadcast receives both', async () => {
    const bystander = await TestClient.connect(server.url, { token: await mintSessionToken((await fixtures.user()).id) });
    try {
      const viaRedis = await run('bash', ['-c', block('broadcast-redis-cli').code], env);
      expect(viaRedis.code, viaRedis.stderr).to.equal(0);
      await bystander.next((f) => f.type === 'broadcast' && (f.data as { message: string }).message === 'Maintenance tonight at 03:00 UTC');
      const viaHttp = await run('bash', ['-c', `${block('broadcast-curl').code} -w ' %{http_code}'`], env);
      expect(viaHttp.code, viaHttp.stderr).to.equal(0);
      expect(viaHttp.stdout).to.match(/ 202$/);
      await bystander.next((f) => f.type === 'broadcast' && (f.data as { message: string }).message === 'Back to normal');
      expect((await bystander.subscribe('broadcast')).code).to.equal('reserved_channel');
    } finally {
      bystander.close();
    }
  });

  it('python: POST /publish from the standard library', async () => {
    const result = await run('python3', ['-c', block('python').code], env);
    expect(result.code, result.stderr).to.equal(0);
    const [status, id] = result.stdout.trim().split(' ');
    expect(status).to.equal('202');
    await watcher.next((f) => f.type === 'post_unliked' && f.id === id);
  });

  it('event-examples: one valid example per event, on a channel of the documented kind', () => {
    const examples = JSON.parse(block('event-examples').code) as unknown[];
    const types = new Set<string>();
    for (const example of examples) {
      const request = publishRequestSchema.parse(example);
      expect(request.channel, 'each example names one channel').to.be.a('string');
      // A channel of a documented kind, or the reserved `broadcast` (every socket receives it).
      expect(parseChannel(request.channel!).ok || isReservedChannel(request.channel!), request.channel).to.equal(true);
      expect(eventAllowedOn(request.channel!, request.type), `${request.type} on ${request.channel}`).to.equal(true);
      const event = publishedEventSchema.safeParse({ type: request.type, data: request.data });
      expect(event.success, `${request.type}: ${JSON.stringify(event.error?.issues)}`).to.equal(true);
      types.add(request.type);
    }
    // Every event of the protocol has its example: a new event cannot go undocumented.
    expect([...types].sort()).to.deep.equal([...EVENT_TYPES].sort());
  });

  it('node-client: connects with a token, subscribes, prints the event and closes', async () => {
    const file = join(tmp, 'node-client.ts');
    await writeFile(file, block('node-client').code);
    const user = await fixtures.user();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, ...env, SESSION_TOKEN: await mintSessionToken(user.id) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    const ready = new Promise<void>((resolve) =>
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes('ready')) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await ready;
      const response = await fetch(`${server.httpUrl}/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'post_42', type: 'post_liked', data: { postId: '42', userId: user.id, likesCount: 5 } }),
      });
      expect(response.status).to.equal(202);
      expect(await exited).to.equal(0);
      expect(stdout).to.include('likes: 5').and.include('closed 1000');
    } finally {
      child.kill();
    }
  });

  it('hook-usage: compiles against the real hooks, with strict types', async function () {
    // A whole tsc program over the hooks and React's types: ~8 s on an idle machine, past
    // mocha's 20 s default when the two cores are shared with other work.
    this.timeout(90_000);
    const dir = tmp;
    await writeFile(join(dir, 'hook-usage.tsx'), block('hook-usage').code);
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../../tsconfig.json', compilerOptions: { incremental: false }, include: ['hook-usage.tsx', '../../../types/**/*.d.ts'] }),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json'), '--noEmit'], {});
    expect(result.code, result.stdout + result.stderr).to.equal(0);
  });

  it('publisher-helpers: one transaction stores the like and the notification and enqueues both events; the relay publishes them', async () => {
    const alice = await fixtures.creator('author');
    const liker = await fixtures.user({ name: 'liker' });
    const post = await fixtures.post(alice.id);
    const author = await TestClient.connect(server.url, { token: await mintSessionToken(alice.id) });
    await author.mustSubscribe(`notifications_${alice.id}`);
    await author.mustSubscribe(`post_${post.id}`);
    const file = join(tmp, 'publisher.ts');
    const prelude = [
      `const post = ${JSON.stringify({ id: post.id, authorId: alice.id, title: post.title, likesCount: 1 })};`,
      `const liker = ${JSON.stringify({ id: liker.id, name: liker.name })};`,
    ].join('\n');
    const [imports, ...body] = block('publisher-helpers').code.split('\n\n');
    await writeFile(file, `${imports}\n${prelude}\n${body.join('\n\n')}\nprocess.exit(0);\n`);
    const result = await run(process.execPath, ['--import', 'tsx', file], {
      ...env,
      DATABASE_URL: testDatabaseUrl(),
      NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      WS_PUBLISH_URL: server.httpUrl,
    });
    expect(result.code, result.stderr).to.equal(0);
    const liked = await author.next((f) => f.type === 'post_liked');
    expect(liked.data).to.deep.include({ postId: post.id, userId: liker.id, likesCount: 1, version: 1 });
    expect(await fixtures.prisma.like.count({ where: { postId: post.id, userId: liker.id } })).to.equal(1);
    const pushed = await author.next((f) => f.type === 'notification');
    const notification = (pushed.data as { notification: { id: string; title: string } }).notification;
    expect(notification.title).to.equal('New like');
    const stored = await fixtures.prisma.notification.findUnique({ where: { id: notification.id } });
    expect(stored?.userId).to.equal(alice.id);
    author.close();
  });
  it('control-examples: one valid example of each control message type', () => {
    const examples = JSON.parse(block('control-examples').code) as unknown[];
    const types = new Set<string>();
    for (const example of examples) {
      const parsed = controlMessageSchema.safeParse(example);
      expect(parsed.success, `${JSON.stringify(example)}: ${JSON.stringify(parsed.error?.issues)}`).to.equal(true);
      types.add(parsed.data!.type);
    }
    const allTypes = controlMessageSchema.options.map((option) => option.shape.type.value);
    expect([...types].sort()).to.deep.equal([...allTypes].sort());
  });

  it('control-redis-cli: the control message reaches <prefix>$control', async () => {
    const recorder = await ControlRecorder.start(testRedisUrl(), env.REDIS_CHANNEL_PREFIX!);
    try {
      const result = await run('bash', ['-c', block('control-redis-cli').code], env);
      expect(result.code, result.stderr).to.equal(0);
      const message = await recorder.next((m) => m.type === 'entitlement_changed');
      expect(message).to.deep.include({ cause: 'subscription_cancelled' });
      expect(recorder.invalid).to.deep.equal([]);
    } finally {
      await recorder.stop();
    }
  });

  it('control-helpers: the app helpers enqueue the three control messages; the relay sends them, valid, in order', async () => {
    const recorder = await ControlRecorder.start(testRedisUrl(), env.REDIS_CHANNEL_PREFIX!);
    try {
      const ids = { userId: 'guide-user', sessionId: 'guide-session', subscriberId: 'guide-fan', creatorId: 'guide-creator', postId: 'guide-post' };
      const file = join(tmp, 'control.ts');
      const prelude = Object.entries(ids).map(([name, value]) => `const ${name} = ${JSON.stringify(value)};`).join('\n');
      const [imports, ...body] = block('control-helpers').code.split('\n\n');
      await writeFile(file, `${imports}\n${prelude}\n${body.join('\n\n')}\nprocess.exit(0);\n`);
      const result = await run(process.execPath, ['--import', 'tsx', file], {
        ...env,
        DATABASE_URL: testDatabaseUrl(),
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
      });
      expect(result.code, result.stderr).to.equal(0);
      await recorder.next((m) => m.type === 'entitlement_changed' && m.cause === 'post_locked');
      // Only the guide's: the relay also sends whatever else of this run's outbox is pending.
      const ours = recorder.messages.filter((m) => JSON.stringify(m).includes('"guide-'));
      expect(ours.map((m) => ({ ...m, ...('at' in m ? { at: 0 } : {}) }))).to.deep.equal([
        { type: 'session_revoked', userId: ids.userId, sessionId: ids.sessionId },
        { type: 'entitlement_changed', cause: 'subscription_cancelled', subjects: [{ kind: 'subscription', subscriberId: ids.subscriberId, creatorId: ids.creatorId }], at: 0 },
        { type: 'entitlement_changed', cause: 'post_locked', subjects: [{ kind: 'post', postId: ids.postId }], at: 0 },
      ]);
    } finally {
      await recorder.stop();
    }
  });

  it('control-curl: POST /control answers 202 and the named user’s socket closes with 4003', async () => {
    // The guide's user id; this run's scratch database is its own.
    await fixtures.prisma.user.upsert({
      where: { id: 'bob' },
      create: { id: 'bob', email: 'bob-guide@test.invalid', name: 'Bob', passwordHash: 'not-a-real-hash' },
      update: {},
    });
    const socket = await TestClient.connect(server.url, { token: await mintSessionToken('bob') });
    try {
      const result = await run('bash', ['-c', `${block('control-curl').code} -w ' %{http_code}'`], env);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.match(/ 202$/);
      expect((await socket.closed).code).to.equal(4003);
    } finally {
      socket.close();
    }
  });
});
