/**
 * Typing indicators against the real server process (PostgreSQL, Redis or the in-process
 * broker): a participant's `typing` frame reaches the other participant's `messages_` channel
 * and nobody else's, a non-participant is answered `forbidden`, the per-conversation budget
 * holds, and nothing of it is kept in the channel's history. Plus the brokers' transient
 * publish (memory, Redis, a local Redis Cluster) and the participants cache, in process.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { MemoryBroker } from '../../src/broker/memory.ts';
import { RedisBroker } from '../../src/broker/redis.ts';
import { RedisClusterBroker } from '../../src/broker/redis-cluster.ts';
import { CachedDirectory } from '../../src/data/cached-directory.ts';
import type { ConversationParticipants, Directory } from '../../src/data/directory.ts';
import { createLogger } from '../../src/logger.ts';
import { TYPING_BURST, TYPING_PER_SECOND } from '../../src/messaging/typing.ts';
import { channelName } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { freePort } from '../../../test/support/ports.ts';
import { TestClient, type Frame } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { metricValue } from '../support/metrics.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

type User = { id: string };

/** A conversation row, its participants in the stored order (userAId < userBId). */
async function conversation(fixtures: Fixtures, a: User, b: User) {
  const [userAId, userBId] = [a.id, b.id].sort();
  return fixtures.prisma.conversation.create({ data: { userAId: userAId!, userBId: userBId! } });
}

const typingFrames = (client: TestClient, channel: string) => client.pushes(channel).filter((f) => f.type === 'typing');

for (const broker of ['redis', 'memory'] as const) {
  describe(`Typing indicators (${broker} broker, real server)`, function () {
    this.timeout(30_000);
    let server: ServerProcess;
    let fixtures: Fixtures;
    const clients: TestClient[] = [];
    let alice: User, bob: User, carol: User, dave: User;
    let aliceBob: { id: string };
    let carolDave: { id: string };

    async function connect(user: User, ...channels: string[]): Promise<TestClient> {
      const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      clients.push(client);
      for (const channel of channels) await client.mustSubscribe(channel);
      return client;
    }

    const typing = (client: TestClient, conversationId: string, value: boolean, id?: number) =>
      client.sendRaw(JSON.stringify({ type: 'typing', conversationId, typing: value, ...(id === undefined ? {} : { id }) }));

    before(async () => {
      fixtures = new Fixtures();
      server = await startServer({ broker });
      alice = await fixtures.creator('alice');
      bob = await fixtures.user({ name: 'bob' });
      carol = await fixtures.user({ name: 'carol' });
      dave = await fixtures.creator('dave');
      aliceBob = await conversation(fixtures, alice, bob);
      carolDave = await conversation(fixtures, carol, dave);
    });
    after(async () => {
      for (const client of clients) client.close();
      await server?.stop();
      await fixtures?.close();
    });

    it('reaches the other participant, and neither the sender nor a third user (each with a positive control)', async () => {
      const aliceTab = await connect(alice, channelName.messages(alice.id));
      const bobTab = await connect(bob, channelName.messages(bob.id));
      const carolTab = await connect(carol, channelName.messages(carol.id));
      const daveTab = await connect(dave);

      typing(aliceTab, aliceBob.id, true);
      const received = await bobTab.next((f) => f.type === 'typing');
      expect(received).to.include({ channel: channelName.messages(bob.id) });
      expect(received.data).to.deep.equal({ conversationId: aliceBob.id, userId: alice.id, typing: true });
      // Never kept: no position in the push.
      expect(received).not.to.have.property('offset');

      // Positive control for carol: her channel does deliver typing, from her own conversation.
      typing(daveTab, carolDave.id, true);
      await carolTab.next((f) => f.type === 'typing' && (f.data as { userId: string }).userId === dave.id);
      // Positive control for alice: she receives bob's typing, not her own.
      typing(bobTab, aliceBob.id, false);
      await aliceTab.next((f) => f.type === 'typing' && (f.data as { userId: string }).userId === bob.id);

      expect(typingFrames(carolTab, channelName.messages(carol.id)).map((f) => f.data)).to.deep.equal([
        { conversationId: carolDave.id, userId: dave.id, typing: true },
      ]);
      expect(typingFrames(aliceTab, channelName.messages(alice.id)).map((f) => f.data)).to.deep.equal([
        { conversationId: aliceBob.id, userId: bob.id, typing: false },
      ]);
      expect(typingFrames(bobTab, channelName.messages(bob.id))).to.have.length(1);
    });

    it('answers a non-participant, and an unknown conversation, forbidden (with the id), and forwards nothing', async () => {
      const bobTab = await connect(bob, channelName.messages(bob.id));
      const carolTab = await connect(carol);
      typing(carolTab, aliceBob.id, true, 41);
      const refusal = await carolTab.next((f) => f.type === 'error' && (f as { id?: unknown }).id === 41);
      expect(refusal).to.include({ code: 'forbidden' });
      expect(refusal.message).to.be.a('string').and.not.empty;
      typing(carolTab, 'no-such-conversation', true, 42);
      expect(await carolTab.next((f) => f.type === 'error' && (f as { id?: unknown }).id === 42)).to.include({ code: 'forbidden' });
      // A malformed frame is a bad request, the connection stays.
      carolTab.sendRaw(JSON.stringify({ type: 'typing', conversationId: aliceBob.id, typing: 'yes', id: 43 }));
      expect(await carolTab.next((f) => f.type === 'error' && (f as { id?: unknown }).id === 43)).to.include({ code: 'bad_request' });
      expect((await carolTab.request({ type: 'ping' })).type).to.equal('pong');
      // Positive control: a participant's typing arrives on the same channel after the refusals.
      const aliceTab = await connect(alice);
      typing(aliceTab, aliceBob.id, true);
      await bobTab.next((f) => f.type === 'typing');
      expect(typingFrames(bobTab, channelName.messages(bob.id)).map((f) => (f.data as { userId: string }).userId)).to.deep.equal([alice.id]);
    });

    it(`holds the budget: a burst of 10 forwards ${TYPING_BURST}, the rest answered rate_limited with retryAfterMs`, async () => {
      const bobTab = await connect(bob, channelName.messages(bob.id));
      const aliceTab = await connect(alice);
      for (let id = 1; id <= 10; id++) typing(aliceTab, aliceBob.id, true, 100 + id);
      const limited: Frame[] = [];
      for (let id = 1; id <= 10; id++) {
        const reply = await aliceTab.next((f) => f.type === 'error' && (f as { id?: unknown }).id === 100 + id, 300).catch(() => null);
        if (reply) limited.push(reply);
      }
      expect(limited).to.have.length(10 - TYPING_BURST);
      for (const reply of limited) {
        expect(reply.code).to.equal('rate_limited');
        expect(reply.retryAfterMs).to.be.a('number').within(1, 1000 / TYPING_PER_SECOND);
      }
      // The budget is per conversation: another conversation of alice's is not affected…
      const other = await conversation(fixtures, alice, carol);
      const carolTab = await connect(carol, channelName.messages(carol.id));
      typing(aliceTab, other.id, true);
      await carolTab.next((f) => f.type === 'typing');
      // …and it refills: after the wait, one more goes through (sent as false, to tell it apart).
      await new Promise((resolve) => setTimeout(resolve, 1000 / TYPING_PER_SECOND + 50));
      typing(aliceTab, aliceBob.id, false);
      await bobTab.next((f) => f.type === 'typing' && (f.data as { typing: boolean }).typing === false);
      const forwarded = typingFrames(bobTab, channelName.messages(bob.id));
      expect(forwarded.filter((f) => (f.data as { typing: boolean }).typing)).to.have.length(TYPING_BURST);
      expect(forwarded).to.have.length(TYPING_BURST + 1);
    });

    it('is never kept: the channel’s position does not move, and a subscriber with since gets nothing replayed', async () => {
      const observer = await connect(bob);
      const before = await observer.subscribe(channelName.messages(bob.id));
      expect(before.type).to.equal('subscribed');
      const aliceTab = await connect(alice);
      typing(aliceTab, aliceBob.id, true);
      await observer.next((f) => f.type === 'typing');
      const late = await connect(bob);
      const since = { offset: before.offset as number, epoch: before.epoch as string };
      const reply = await late.request({ type: 'subscribe', channel: channelName.messages(bob.id), since: { offset: 0, epoch: since.epoch } });
      expect(reply).to.include({ type: 'subscribed', offset: since.offset, epoch: since.epoch, recovered: true });
      await late.request({ type: 'ping' });
      expect(typingFrames(late, channelName.messages(bob.id))).to.deep.equal([]);
    });

    it('reads a conversation’s participants once (cached for good)', async () => {
      const series = 'ws_access_cache_total{kind="conversation",result="miss"}';
      const fresh = await conversation(fixtures, bob, dave);
      const daveTab = await connect(dave, channelName.messages(dave.id));
      const bobTab = await connect(bob);
      const missesBefore = await metricValue(server.httpUrl, series);
      typing(bobTab, fresh.id, true);
      await daveTab.next((f) => f.type === 'typing');
      await new Promise((resolve) => setTimeout(resolve, 1000 / TYPING_PER_SECOND + 50));
      typing(bobTab, fresh.id, false);
      await daveTab.next((f) => f.type === 'typing' && (f.data as { typing: boolean }).typing === false);
      expect(await metricValue(server.httpUrl, series)).to.equal(missesBefore + 1);
    });
  });
}

describe('Broker › transient publish', () => {
  const payload = JSON.stringify({ type: 'typing', data: { conversationId: 'c1', userId: 'u1', typing: true } });

  it('memory: delivered without offset, the history untouched', async () => {
    const broker = new MemoryBroker();
    const got: string[] = [];
    broker.onMessage((_channel, message) => got.push(message));
    await broker.subscribe('messages_u2');
    const before = await broker.history('messages_u2', 0, 10);
    expect(await broker.publish('messages_u2', payload, { transient: true })).to.equal(null);
    await new Promise((resolve) => setImmediate(resolve));
    expect(got).to.deep.equal([payload]);
    const after = await broker.history('messages_u2', 0, 10);
    expect(after).to.deep.equal(before);
    // Control: a normal publish on the same channel does get an offset and is kept.
    expect(await broker.publish('messages_u2', payload)).to.deep.include({ offset: 1 });
    expect((await broker.history('messages_u2', 0, 10)).events).to.have.length(1);
    await broker.close();
  });

  it('redis: a plain PUBLISH, delivered without offset, no history keys written', async () => {
    const prefix = testRedisPrefix('transient:');
    const broker = new RedisBroker({ url: testRedisUrl(), channelPrefix: prefix, logger: createLogger({ level: 'error', format: 'json' }) });
    const redis = new Redis(testRedisUrl());
    try {
      await broker.ready();
      const got: string[] = [];
      broker.onMessage((_channel, message) => got.push(message));
      await broker.subscribe('messages_u2');
      expect(await broker.publish('messages_u2', payload, { transient: true })).to.equal(null);
      const deadline = Date.now() + 2_000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(got).to.deep.equal([payload]);
      expect(await redis.keys(`${prefix}history:*`)).to.deep.equal([]);
      // Control: a normal publish writes the history keys.
      await broker.publish('messages_u2', payload);
      expect(await redis.keys(`${prefix}history:*`)).to.have.length(2);
    } finally {
      await broker.close();
      redis.disconnect();
    }
  });
});

describe('Broker › transient publish on a Redis Cluster (three local masters)', function () {
  this.timeout(30_000);
  const run = promisify(execFile);
  const dir = mkdtempSync(join(tmpdir(), 'fonana-typing-cluster-'));
  const children: ChildProcess[] = [];
  let ports: number[] = [];
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  const until = async (probe: () => Promise<boolean>, what: string) => {
    for (const deadline = Date.now() + 10_000; !(await probe().catch(() => false)); ) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  before(async () => {
    const distinct = new Set<number>();
    while (distinct.size < 6) distinct.add(await freePort());
    const [a, b, c, ...buses] = [...distinct];
    ports = [a!, b!, c!];
    for (const [i, port] of ports.entries()) {
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(buses[i]),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      child.on('error', () => {});
      children.push(child);
      await until(async () => (await cli(port, 'ping')) === 'PONG', `redis-server on ${port}`);
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) await until(async () => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok'), `cluster_state:ok on ${port}`);
  });
  after(async () => {
    for (const port of ports) await cli(port, 'shutdown', 'nosave').catch(() => {});
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers without offset and keeps no history keys on any master; a normal publish does', async () => {
    const broker = new RedisClusterBroker({
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      channelPrefix: 'ws:',
      logger: createLogger({ level: 'error', format: 'json' }),
    });
    try {
      await broker.ready();
      const got: string[] = [];
      broker.onMessage((_channel, message) => got.push(message));
      await broker.subscribe('messages_u2');
      const payload = JSON.stringify({ type: 'typing', data: { conversationId: 'c1', userId: 'u1', typing: true } });
      expect(await broker.publish('messages_u2', payload, { transient: true })).to.equal(null);
      await until(async () => got.length === 1, 'the transient event');
      expect(got).to.deep.equal([payload]);
      const historyKeys = async () => (await Promise.all(ports.map((port) => cli(port, 'keys', 'ws:history:*')))).join('\n').split('\n').filter(Boolean);
      expect(await historyKeys()).to.deep.equal([]);
      expect(await broker.publish('messages_u2', payload)).to.deep.include({ offset: 1 });
      expect(await historyKeys()).to.have.length(2);
    } finally {
      await broker.close();
    }
  });
});

describe('CachedDirectory › conversation participants', () => {
  class CountingDirectory {
    reads = 0;
    async conversationParticipants(id: string): Promise<ConversationParticipants | null> {
      this.reads++;
      return id === 'known' ? ['a', 'b'] : null;
    }
  }

  it('keeps found participants for good (even with the TTL cache off and after clear), never an unknown id', async () => {
    const inner = new CountingDirectory();
    const cache = new CachedDirectory(inner as unknown as Directory, { ttlMs: 0 });
    expect(await cache.conversationParticipants('known')).to.deep.equal(['a', 'b']);
    cache.clear();
    expect(await cache.conversationParticipants('known')).to.deep.equal(['a', 'b']);
    expect(inner.reads).to.equal(1);
    expect(await cache.conversationParticipants('unknown')).to.equal(null);
    expect(await cache.conversationParticipants('unknown')).to.equal(null);
    expect(inner.reads).to.equal(3);
  });
});
