/**
 * Presence across real server processes on one Redis: who is online and how many view a post,
 * whatever node each socket is on, announced through pub/sub, coalesced to one `viewers` push a
 * second, and correct again within PRESENCE_TTL_MS (+ a third of it for the next sweep) when a
 * node dies without a word.
 */
import { expect } from 'chai';
import { channelName } from '../../src/protocol/index.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { presenceEnv, sleep, TimedClient } from './helpers.ts';

const TTL_MS = 2_000;
/** The longest a dead node may keep counting: its entries' expiry, then the next sweep. */
const DEAD_NODE_BOUND_MS = TTL_MS + TTL_MS / 3;

describe('presence › across nodes on one Redis', function () {
  this.timeout(60_000);
  let fixtures: Fixtures;
  let a: ServerProcess;
  let b: ServerProcess;
  const extraServers: ServerProcess[] = [];
  let clients: TimedClient[] = [];

  const connect = async (server: ServerProcess, userId: string) => {
    const client = await TimedClient.connect(server, userId);
    clients.push(client);
    return client;
  };

  before(async () => {
    fixtures = new Fixtures();
    [a, b] = await Promise.all([startServer({ env: presenceEnv(TTL_MS) }), startServer({ env: presenceEnv(TTL_MS) })]);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      // What the nodes said about it: warnings and errors only.
      for (const [name, server] of [['A', a], ['B', b], ...extraServers.map((s, i) => [`extra ${i}`, s] as const)] as const) {
        const lines = server.log().split('\n').filter((line) => /"level":"(warn|error)"/.test(line) && !line.includes('ALLOWED_ORIGINS'));
        if (lines.length > 0) console.log(`      node ${name}:\n${lines.slice(-20).join('\n')}`);
      }
    }
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    await Promise.all(extraServers.splice(0).map((s) => s.stop('SIGKILL')));
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await fixtures?.close();
  });

  it('a creator connecting on node B flips creator_presence online for a subscriber on node A; closing flips it offline', async () => {
    const creator = await fixtures.creator();
    const viewer = await fixtures.user();
    const channel = channelName.creator(creator.id);
    const watcher = await connect(a, viewer.id);
    await watcher.client.mustSubscribe(channel);
    const initial = await watcher.waitState(channel, 'creator_presence', () => true);
    expect(initial.data).to.deep.equal({ creatorId: creator.id, online: false });

    const from = watcher.frameCount;
    const creatorSocket = await connect(b, creator.id);
    const connectedAt = Date.now(); // its `connected` frame: the socket is open on B
    const online = await watcher.waitState(channel, 'creator_presence', (d) => d.online === true, from);
    const onlineMs = watcher.arrivals.get(online)! - connectedAt;
    // Presence is state, not history: no position, so no client takes it for a gap.
    expect(online).to.not.have.property('offset');

    const offlineFrom = watcher.frameCount;
    const closedAt = Date.now();
    await creatorSocket.close();
    const offline = await watcher.waitState(channel, 'creator_presence', (d) => d.online === false, offlineFrom);
    const offlineMs = watcher.arrivals.get(offline)! - closedAt;
    console.log(`      online seen on node A ${onlineMs} ms after the socket opened on B; offline ${offlineMs} ms after the close`);
    // Announced by the node where it changed, at once (a loaded machine adds some latency).
    expect(onlineMs).to.be.below(1_000);
    expect(offlineMs).to.be.below(1_000);
    await sleep(300);
    expect(watcher.pushes(channel, 'creator_presence').map((f) => (f.data as { online: boolean }).online)).to.deep.equal([false, true, false]);
  });

  it('subscribing gets the current state at once: online on another node, and the viewers of a post', async () => {
    const creator = await fixtures.creator();
    const post = await fixtures.post(creator.id);
    const [u1, u2, newcomer] = await Promise.all([fixtures.user(), fixtures.user(), fixtures.user()]);
    await connect(b, creator.id);
    for (const user of [u1, u2]) await (await connect(b, user.id)).client.mustSubscribe(channelName.post(post.id));

    const watcher = await connect(a, newcomer.id);
    for (const [channel, type, expected] of [
      [channelName.creator(creator.id), 'creator_presence', { creatorId: creator.id, online: true }],
      [channelName.post(post.id), 'viewers', { postId: post.id, count: 3 }],
    ] as const) {
      const from = watcher.frameCount;
      const reply = await watcher.client.subscribe(channel);
      expect(reply.type).to.equal('subscribed');
      // The very next frame of the channel, right behind the reply.
      const state = await watcher.nextFrom(from, (f) => f.channel === channel && f.type !== 'subscribed', 1_000);
      expect(state.type).to.equal(type);
      expect(state.data).to.deep.equal(expected);
      expect(state).to.not.have.property('offset');
      expect(watcher.arrivals.get(state)! - watcher.arrivals.get(reply)!).to.be.below(100);
    }
  });

  it('counts distinct users subscribed to the post channel across both nodes', async () => {
    const creator = await fixtures.creator();
    const post = await fixtures.post(creator.id);
    const channel = channelName.post(post.id);
    const [u1, u2, observer] = await Promise.all([fixtures.user(), fixtures.user(), fixtures.user()]);
    const watcher = await connect(a, observer.id);
    await watcher.client.mustSubscribe(channel);
    // u1 twice (one socket per node), u2 once: three people with the observer, not four.
    const u1a = await connect(a, u1.id);
    const u1b = await connect(b, u1.id);
    const u2b = await connect(b, u2.id);
    await Promise.all([u1a, u1b, u2b].map((c) => c.client.mustSubscribe(channel)));
    await watcher.waitState(channel, 'viewers', (d) => d.count === 3);
    await sleep(1_300); // past one coalescing interval: nothing more to say
    expect(watcher.lastCount(channel)).to.equal(3);

    await u2b.client.request({ type: 'unsubscribe', channel });
    await watcher.waitState(channel, 'viewers', (d) => d.count === 2, watcher.frameCount);
    await u1a.close(); // u1 is still there through node B
    await sleep(1_300);
    expect(watcher.lastCount(channel)).to.equal(2);
    await u1b.close();
    await watcher.waitState(channel, 'viewers', (d) => d.count === 1, watcher.frameCount);
  });

  it('coalesces viewers: at most one push a second per post, the last one right', async () => {
    const creator = await fixtures.creator();
    const post = await fixtures.post(creator.id);
    const channel = channelName.post(post.id);
    const observer = await fixtures.user();
    const users = await Promise.all(Array.from({ length: 12 }, () => fixtures.user()));
    const watcher = await connect(a, observer.id);
    await watcher.client.mustSubscribe(channel);
    await watcher.waitState(channel, 'viewers', () => true);
    await sleep(1_100); // the observer's own arrival announced and past
    const from = watcher.frameCount;
    const startedAt = Date.now();

    // 12 arrivals over ~2.5 s on both nodes, then 4 departures: 16 changes.
    const joined: TimedClient[] = [];
    for (const [i, user] of users.entries()) {
      const client = await connect(i % 2 === 0 ? a : b, user.id);
      await client.client.mustSubscribe(channel);
      joined.push(client);
      await sleep(150);
    }
    for (const client of joined.slice(0, 4)) await client.close();
    const changesMs = Date.now() - startedAt;
    await watcher.waitState(channel, 'viewers', (d) => d.count === 9, from, 5_000);
    await sleep(1_500); // anything still held back would come now

    const pushes = watcher.pushes(channel, 'viewers').filter((f) => watcher.client.frames.indexOf(f) >= from);
    const times = pushes.map((f) => watcher.arrivals.get(f)!);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    console.log(`      16 changes in ${changesMs} ms → ${pushes.length} pushes (${pushes.map((f) => (f.data as { count: number }).count).join(', ')}), gaps ${gaps.join(', ')} ms`);
    expect(pushes.length).to.be.within(3, 16 - 1);
    // The gate is one second between publishes on the Redis clock; arrival adds a few ms of jitter.
    for (const gap of gaps) expect(gap).to.be.at.least(950);
    expect(watcher.lastCount(channel)).to.equal(9);
  });

  it('a node killed with SIGKILL stops counting within PRESENCE_TTL_MS + a third of it', async () => {
    const c = await startServer({ env: presenceEnv(TTL_MS) });
    extraServers.push(c);
    const creator = await fixtures.creator();
    const post = await fixtures.post(creator.id);
    const [reader, observer] = await Promise.all([fixtures.user(), fixtures.user()]);
    const creatorChannel = channelName.creator(creator.id);
    const postChannel = channelName.post(post.id);
    const watcher = await connect(a, observer.id);
    await watcher.client.mustSubscribe(creatorChannel);
    await watcher.client.mustSubscribe(postChannel);
    await connect(c, creator.id);
    const onC = await connect(c, reader.id);
    await onC.client.mustSubscribe(postChannel);
    await watcher.waitState(creatorChannel, 'creator_presence', (d) => d.online === true);
    await watcher.waitState(postChannel, 'viewers', (d) => d.count === 2);
    await sleep(1_100); // no announcement of the post in flight: the next one is not held back

    const from = watcher.frameCount;
    c.child.kill('SIGKILL');
    const killedAt = Date.now();
    const offline = await watcher.waitState(creatorChannel, 'creator_presence', (d) => d.online === false, from, 10_000);
    const fewer = await watcher.waitState(postChannel, 'viewers', (d) => d.count === 1, from, 10_000);
    const offlineMs = watcher.arrivals.get(offline)! - killedAt;
    const fewerMs = watcher.arrivals.get(fewer)! - killedAt;
    console.log(`      SIGKILL → offline after ${offlineMs} ms, viewers 2 → 1 after ${fewerMs} ms (TTL ${TTL_MS} ms, bound ${DEAD_NODE_BOUND_MS} ms)`);
    // Not before the entries could have expired (they were refreshed less than TTL / 3 ago)…
    expect(offlineMs).to.be.at.least((TTL_MS * 2) / 3 - 100);
    // …and within their expiry plus one sweep, with a margin for a loaded machine.
    expect(offlineMs).to.be.at.most(DEAD_NODE_BOUND_MS + 500);
    expect(fewerMs).to.be.at.most(DEAD_NODE_BOUND_MS + 500);
  });

  it('a node shut down with SIGTERM takes its entries away at once, without waiting for them to expire', async () => {
    // A long TTL on the stopping node: only its own removal can be this fast.
    const c = await startServer({ env: presenceEnv(30_000) });
    extraServers.push(c);
    const creator = await fixtures.creator();
    const observer = await fixtures.user();
    const channel = channelName.creator(creator.id);
    const watcher = await connect(a, observer.id);
    await watcher.client.mustSubscribe(channel);
    await connect(c, creator.id);
    await watcher.waitState(channel, 'creator_presence', (d) => d.online === true);
    const from = watcher.frameCount;
    const stoppedAt = Date.now();
    expect(await c.stop('SIGTERM')).to.equal(0);
    const offline = await watcher.waitState(channel, 'creator_presence', (d) => d.online === false, from, 5_000);
    expect(watcher.arrivals.get(offline)! - stoppedAt).to.be.below(2_000);
  });
});
