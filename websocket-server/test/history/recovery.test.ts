/**
 * History and recovery on the running server: subscribe with `since` replays what was missed
 * in order before live events; a lost window or epoch says `recovered: false`; notifications_
 * falls back to the database; and a node whose Redis subscriber was down delivers, after the
 * reconnect, every event published meanwhile (history/continuity.ts).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { historyKeys, publishWithHistory } from '../../src/broker/history-script.ts';
import { channelName } from '../../src/protocol/index.ts';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/env.ts';
import { TestClient, type Frame } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

type Positioned = { offset: number; epoch: string };
const liked = (postId: string, n: number) => JSON.stringify({ type: 'post_liked', data: { postId, userId: 'u', likesCount: n } });
const countOf = (f: Frame) => (f.data as { likesCount?: number } | undefined)?.likesCount;
/** The channel's likes only: presence pushes (`viewers`) share post channels. */
const likes = (client: TestClient, channel: string) => client.pushes(channel).filter((f) => f.type === 'post_liked');

describe('History and recovery', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let redis: Redis;
  let prefix: string;
  const nodeId = `history-${randomBytes(4).toString('hex')}`;

  before(async () => {
    prefix = testRedisPrefix('ws:');
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    server = await startServer({ env: { NODE_ID: nodeId } });
  });
  after(async () => {
    await server?.stop();
    redis?.disconnect();
    await fixtures?.close();
  });

  async function postChannel() {
    const post = await fixtures.post((await fixtures.creator()).id);
    return { post, channel: channelName.post(post.id) };
  }
  const publish = (channel: string, payload: string) => publishWithHistory(redis, prefix, channel, payload);

  it('carries offset and epoch on pushes and the channel’s position on subscribed', async () => {
    const { post, channel } = await postChannel();
    await publish(channel, liked(post.id, 1));
    const client = await TestClient.connect(server.url, { token: await mintSessionToken((await fixtures.user()).id) });
    const reply = (await client.subscribe(channel)) as Frame & Positioned;
    expect(reply).to.include({ type: 'subscribed', offset: 1 });
    expect(reply.epoch).to.be.a('string');
    expect(reply).to.not.have.property('recovered');
    await publish(channel, liked(post.id, 2));
    const push = (await client.next((f) => countOf(f) === 2)) as Frame & Positioned;
    expect(push).to.include({ offset: 2, epoch: reply.epoch });
    client.close();
  });

  it('replays every event after since, in order and once, before live ones, and says recovered: true', async () => {
    const { post, channel } = await postChannel();
    const user = await fixtures.user();
    const first = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    const { epoch, offset } = (await first.subscribe(channel)) as Frame & Positioned;
    first.close();
    for (let n = 1; n <= 30; n++) await publish(channel, liked(post.id, n));
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    // Live events keep coming while the replay is read.
    const live = (async () => {
      for (let n = 31; n <= 40; n++) await publish(channel, liked(post.id, n));
    })();
    const reply = await client.request({ type: 'subscribe', channel, since: { offset, epoch } });
    expect(reply).to.include({ type: 'subscribed', recovered: true });
    await live;
    await client.next((f) => countOf(f) === 40);
    const counts = likes(client, channel).map(countOf);
    expect(counts).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    const offsets = likes(client, channel).map((f) => (f as Frame & Positioned).offset);
    expect(offsets).to.deep.equal(Array.from({ length: 40 }, (_, i) => offset + i + 1));
    // `subscribed` precedes every push of the channel.
    expect(client.frames.indexOf(reply)).to.be.lessThan(client.frames.findIndex((f) => f.channel === channel && f.type === 'post_liked'));
    client.close();
  });

  it('says recovered: false when the epoch changed or the window is gone', async () => {
    const { post, channel } = await postChannel();
    const user = await fixtures.user();
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    const position = (await client.subscribe(channel)) as Frame & Positioned;
    await client.request({ type: 'unsubscribe', channel });
    expect(await client.request({ type: 'subscribe', channel, since: { offset: position.offset, epoch: 'not-the-epoch' } })).to.include({ recovered: false });
    await client.request({ type: 'unsubscribe', channel });
    // The history lost (as after a Redis restart without persistence): a new epoch.
    await publish(channel, liked(post.id, 1));
    const keys = historyKeys(prefix, channel);
    await redis.del(keys.meta, keys.stream);
    await publish(channel, liked(post.id, 2));
    const reply = (await client.request({ type: 'subscribe', channel, since: { offset: position.offset + 1, epoch: position.epoch } })) as Frame & Positioned;
    expect(reply).to.include({ recovered: false, offset: 1 });
    expect(reply.epoch).to.not.equal(position.epoch);
    expect(likes(client, channel).map(countOf)).to.not.include(2);
    client.close();
  });

  it('falls back to the database for notifications_: what came after the client’s newest one, with the unread count', async () => {
    const user = await fixtures.user();
    const channel = channelName.notifications(user.id);
    const seen = await fixtures.notification(user.id, { title: 'seen' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const missed = [await fixtures.notification(user.id, { title: 'missed 1' }), await fixtures.notification(user.id, { title: 'missed 2', isRead: true })];
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    const reply = await client.request({ type: 'subscribe', channel, since: { offset: 3, epoch: 'gone' }, lastNotificationId: seen.id });
    expect(reply).to.include({ type: 'subscribed', recovered: false });
    const recovered = await client.next((f) => f.type === 'notifications_recovered');
    const data = recovered.data as { notifications: Array<{ id: string }>; unreadCount: number };
    expect(data.notifications.map((n) => n.id)).to.deep.equal([missed[1]!.id, missed[0]!.id]);
    expect(data.unreadCount).to.equal(2);
    expect(client.frames.some((f) => f.type === 'unread_notifications')).to.equal(false);
    client.close();
  });

  it('gives the unread snapshot a stable id and the position it reflects', async () => {
    const user = await fixtures.user();
    await fixtures.notification(user.id);
    const token = await mintSessionToken(user.id);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await TestClient.connect(server.url, { token });
      const reply = (await client.subscribe(channelName.notifications(user.id))) as Frame & Positioned;
      const snapshot = (await client.next((f) => f.type === 'unread_notifications')) as Frame & Positioned;
      expect(snapshot).to.include({ offset: reply.offset, epoch: reply.epoch });
      ids.push(String(snapshot.id));
      client.close();
    }
    expect(ids[0]).to.equal(ids[1]);
  });

  it('delivers what was published while its Redis subscriber was down, in order, once it reconnects', async () => {
    const { post, channel } = await postChannel();
    const client = await TestClient.connect(server.url, { token: await mintSessionToken((await fixtures.user()).id) });
    await client.mustSubscribe(channel);
    await publish(channel, liked(post.id, 1));
    await client.next((f) => countOf(f) === 1);

    const list = (await redis.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(`name=fonana-ws-sub:${nodeId}`));
    const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(id, 'subscriber connection listed by name').to.be.a('string');
    expect(await redis.client('KILL', 'ID', id!)).to.equal(1);
    // Published while the node's subscriber is gone: pub/sub alone would lose these.
    for (let n = 2; n <= 11; n++) await publish(channel, liked(post.id, n));
    await client.next((f) => countOf(f) === 11, 10_000);
    expect(likes(client, channel).map(countOf)).to.deep.equal(Array.from({ length: 11 }, (_, i) => i + 1));
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).to.match(/ws_history_recoveries_total\{outcome="recovered",trigger="(reconnect|gap)"\} [1-9]/);
    client.close();
  });

  it('drops a plainly published event whose offset is ahead of the history, and keeps delivering', async () => {
    const { post, channel } = await postChannel();
    const client = await TestClient.connect(server.url, { token: await mintSessionToken((await fixtures.user()).id) });
    const { epoch } = (await client.subscribe(channel)) as Frame & Positioned;
    // Not through the history script: a made-up position far ahead.
    await redis.publish(`${prefix}${channel}`, JSON.stringify({ type: 'post_liked', data: { postId: post.id, userId: 'u', likesCount: 666 }, offset: 9_999, epoch }));
    await publish(channel, liked(post.id, 1));
    await client.next((f) => countOf(f) === 1);
    expect(likes(client, channel).map(countOf)).to.deep.equal([1]);
    expect(server.log()).to.include('offset is ahead of the channel');
    client.close();
  });
});
