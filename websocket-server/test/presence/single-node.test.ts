/**
 * Without Redis: one server process with the in-process broker and presence store gives the
 * same answers as a cluster of nodes (the conformance suite checks the stores themselves).
 */
import { expect } from 'chai';
import { channelName } from '../../src/protocol/index.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { presenceEnv, sleep, TimedClient } from './helpers.ts';

describe('presence › one node without Redis', function () {
  this.timeout(30_000);
  let fixtures: Fixtures;
  let server: ServerProcess;
  let clients: TimedClient[] = [];
  const connect = async (userId: string) => {
    const client = await TimedClient.connect(server, userId);
    clients.push(client);
    return client;
  };

  before(async () => {
    fixtures = new Fixtures();
    server = await startServer({ broker: 'memory', env: presenceEnv(2_000) });
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
  });
  after(async () => {
    await server?.stop();
    await fixtures?.close();
  });

  it('pushes creator_presence: the state on subscribe, then online and offline as the creator comes and goes', async () => {
    const creator = await fixtures.creator();
    const channel = channelName.creator(creator.id);
    const watcher = await connect((await fixtures.user()).id);
    await watcher.client.mustSubscribe(channel);
    await watcher.waitState(channel, 'creator_presence', (d) => d.online === false);
    const arrival = watcher.frameCount;
    const socket = await connect(creator.id);
    await watcher.waitState(channel, 'creator_presence', (d) => d.online === true, arrival);
    const from = watcher.frameCount;
    await socket.close();
    await watcher.waitState(channel, 'creator_presence', (d) => d.online === false, from);
    expect(watcher.pushes(channel, 'creator_presence').map((f) => (f.data as { online: boolean }).online)).to.deep.equal([false, true, false]);
  });

  it('counts distinct viewers of a post, coalesced to one push a second', async () => {
    const creator = await fixtures.creator();
    const post = await fixtures.post(creator.id);
    const channel = channelName.post(post.id);
    const [u1, u2, observer] = await Promise.all([fixtures.user(), fixtures.user(), fixtures.user()]);
    const u1First = await connect(u1.id);
    const u1Second = await connect(u1.id);
    const u2Socket = await connect(u2.id);
    await Promise.all([u1First, u1Second, u2Socket].map((c) => c.client.mustSubscribe(channel)));
    const watcher = await connect(observer.id);
    await watcher.client.mustSubscribe(channel);
    // The state on subscribe counts the newcomer too.
    expect((await watcher.waitState(channel, 'viewers', () => true)).data).to.deep.equal({ postId: post.id, count: 3 });
    await u2Socket.close();
    await u1First.close();
    await watcher.waitState(channel, 'viewers', (d) => d.count === 2, 0, 3_000);
    await sleep(1_200);
    const counts = watcher.pushes(channel, 'viewers');
    const times = counts.slice(1).map((f) => watcher.arrivals.get(f)!);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).to.be.at.least(950);
    expect(watcher.lastCount(channel)).to.equal(2);
  });
});
