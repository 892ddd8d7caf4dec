/**
 * Fault drill: Redis goes away under a running server with clients subscribed and a steady
 * publisher (publishWithHistory, retried as the outbox would), on a redis-server of the drill's
 * own (a free port, no persistence; never the shared 6379).
 *
 * 1. `redis-cli shutdown nosave` mid-stream, then a restart on the same port: the history is
 *    gone, so a client cannot be told "nothing was missed". Every event published before the
 *    kill reached every client; afterwards each client is told to reload (`recovered: false`,
 *    after the node's `resubscribe` notice) and every event after that reload reaches it; none
 *    is lost, none applied twice. A notifications_ client holding `lastNotificationId` gets the
 *    rows created while Redis was down from the database (`notifications_recovered`).
 * 2. Only the server's subscriber connection is killed (`CLIENT KILL`), the history survives:
 *    every event reaches every client, in order, and nobody reloads.
 * 3. The node's link to Redis stalls (a paused TCP proxy) after its subscriber was cut, events
 *    are published that never reach it, then Redis restarts: those events are gone with the
 *    history, and the clients must be told to reload rather than carry on as if nothing was
 *    missed.
 *
 * Each run prints the counts and the recovery latency (Redis back → each client's reload, or
 * subscriber back → last missed event delivered).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { publishWithHistory } from '../../websocket-server/src/broker/history-script.ts';
import { channelName, toNotificationPayload } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { DrillClient } from './support/drill-client.ts';
import { HookClient } from './support/hook-client.ts';
import { account, describeLost, report, settled, summarize, totals } from './support/ledger.ts';
import { TcpProxy } from '../../websocket-server/test/support/tcp-proxy.ts';
import { OwnRedis } from './support/own-redis.ts';
import { SteadyPublisher, sleep } from './support/publisher.ts';

const CLIENTS = 12;
const USERS = 3;
const PREFIX = 'ws:';

describe('drill: Redis killed and restarted mid-stream', function () {
  this.timeout(60_000);

  let redis: OwnRedis;
  let server: ServerProcess;
  let fixtures: Fixtures;
  let tokens: string[];
  const nodeId = `drill-redis-${randomBytes(3).toString('hex')}`;
  const clients: DrillClient[] = [];
  const hooks: HookClient[] = [];
  const publishers: SteadyPublisher[] = [];

  before(async function () {
    this.timeout(40_000);
    redis = await OwnRedis.start();
    fixtures = new Fixtures();
    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => fixtures.user({ name: `drill${i}` })));
    tokens = await Promise.all(users.map((u) => mintSessionToken(u.id)));
    server = await startServer({
      env: {
        REDIS_URL: redis.url,
        REDIS_CHANNEL_PREFIX: PREFIX,
        NODE_ID: nodeId,
        LOG_LEVEL: 'info',
        CONNECT_RATE_PER_IP: '1000',
        CONNECT_BURST_PER_IP: '1000',
      },
    });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.stop();
    for (const hook of hooks.splice(0)) hook.stop();
    for (const publisher of publishers.splice(0)) await publisher.close();
  });

  after(async () => {
    for (const client of clients) client.stop();
    for (const hook of hooks) hook.stop();
    await server?.stop();
    await redis?.stop();
    await fixtures?.close();
  });

  async function postChannel() {
    const post = await fixtures.post((await fixtures.creator()).id);
    return { postId: post.id, channel: channelName.post(post.id) };
  }

  async function connectClients(channel: string): Promise<DrillClient[]> {
    const started = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const client = new DrillClient({ urls: [server.url], token: tokens[i % USERS]!, channels: [channel], name: `c${i}` });
        clients.push(client);
        await client.start();
        return client;
      }),
    );
    return started;
  }

  function publisherFor(postId: string, channel: string): SteadyPublisher {
    const publisher = new SteadyPublisher({ redisUrl: redis.url, prefix: PREFIX, channel, postId, rate: 40, idPrefix: `ev-${randomBytes(3).toString('hex')}` });
    publishers.push(publisher);
    return publisher;
  }

  /** Waits until every client has every published event, or a reload covering it. */
  async function settle(group: DrillClient[], channel: string, publisher: SteadyPublisher, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!group.every((c) => settled(c, channel, publisher.published))) {
      if (Date.now() > deadline) return;
      await sleep(50);
    }
  }

  it('history lost with the restart: events before the kill and after each client’s reload all delivered, none lost or twice; notifications from the database', async function () {
    const { postId, channel } = await postChannel();
    const group = await connectClients(channel);
    // The browser hook's own client too: it must hear recovered:false and reload.
    for (let i = 0; i < 4; i++) {
      const hook = new HookClient({ url: server.url, token: tokens[i % USERS]!, channel, name: `hook${i}` });
      hooks.push(hook);
      hook.start();
    }
    await waitFor(() => hooks.every((h) => h.subscribed), 'the hook clients subscribed');

    // A notifications_ client that holds its newest notification.
    const reader = await fixtures.user({ name: 'reader' });
    const notifications = channelName.notifications(reader.id);
    const seen = await fixtures.notification(reader.id, { title: 'seen before the outage' });
    const bell = new DrillClient({ urls: [server.url], token: await mintSessionToken(reader.id), channels: [notifications], name: 'bell' });
    clients.push(bell);
    await bell.start();
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 100 });
    admin.on('error', () => {});
    await new Promise((resolve) => admin.once('ready', resolve));
    try {
      await publishWithHistory(admin, PREFIX, notifications, JSON.stringify({ type: 'notification', data: { notification: toNotificationPayload(seen) } }));
    } finally {
      admin.disconnect();
    }
    await bell.until(() => bell.lastNotificationId === seen.id, 5_000, 'the live notification');

    const publisher = publisherFor(postId, channel);
    await publisher.ready();
    publisher.start();
    await sleep(1_500);

    await redis.kill();
    const killedAt = Date.now();
    // A publish in flight at the kill that Redis took still counts as before it.
    const beforeKill = publisher.published.length;
    publisher.phase = 'outage';
    // Written while Redis is down: the app's publish of these fails, the rows are committed.
    const missed: Array<{ id: string; title: string }> = [];
    for (let i = 0; i < 3; i++) {
      await sleep(15);
      missed.push(await fixtures.notification(reader.id, { title: `created while Redis was down ${i}` }));
    }
    await sleep(2_000);
    expect(publisher.published.length, 'nothing acknowledged while Redis is down').to.equal(beforeKill);

    await redis.restart();
    const backAt = Date.now();
    publisher.phase = 'after';
    await sleep(2_000);
    await publisher.stop();
    await settle(group, channel, publisher);
    await bell.until(() => missed.every((n) => bell.channel(notifications).notificationIds.includes(n.id)), 10_000, 'the notifications created while Redis was down').catch(() => undefined);

    // A hook client has every event acknowledged before the kill, and every one acknowledged
    // after its recovered:false (it reloads its state there).
    const hookReloadAt = (h: HookClient) => h.confirmations.find((c) => c.resubscribed && c.recovered === false && c.at >= backAt)?.at;
    const hookMissing = (h: HookClient) => {
      const ids = h.ids();
      const reloadAt = hookReloadAt(h) ?? Infinity;
      return publisher.published.filter((e) => (e.phase === 'before' || e.ackedAt > reloadAt) && !ids.has(e.id)).map((e) => e.seq);
    };
    await waitFor(() => hooks.every((h) => hookReloadAt(h) !== undefined && hookMissing(h).length === 0), 'the hook clients', 10_000).catch(() => undefined);
    const accounts = group.map((c) => account(c, channel, publisher.published));
    const sum = totals(accounts, publisher.published.length);
    const reloadLatency = group.flatMap((c) => c.channel(channel).reloads.filter((r) => r.at > backAt).slice(0, 1).map((r) => r.at - backAt));
    const bellState = bell.channel(notifications);
    report('Redis shutdown nosave + restart', {
      'published (acked)': `${sum.published} (${beforeKill} before the kill, ${sum.published - beforeKill} after the restart; ${publisher.failedAttempts} failed attempts retried)`,
      'outage': `${backAt - killedAt} ms`,
      'delivered': `${sum.deliveries} of ${sum.expected}`,
      'covered by a reload': sum.coveredByReload,
      'reloads (recovered:false)': sum.reloads,
      'resubscribe notices': sum.resubscribeNotices,
      'lost': sum.lost,
      'duplicates after dedup': sum.duplicatesAfterDedup,
      'raw duplicates dropped': sum.rawDuplicates,
      'out of order': sum.outOfOrder,
      'position violations': sum.violations,
      'reload latency (Redis back → recovered:false)': summarize(reloadLatency),
      'notifications_recovered': JSON.stringify(bellState.recoveredNotifications.map((l) => l.length)),
      'hook clients (RealtimeClient)': `${hooks.length}: recovered:false after the restart ${hooks.filter((h) => hookReloadAt(h) !== undefined).length}, missing events ${hooks.reduce((n, h) => n + hookMissing(h).length, 0)}, reload latency ${summarize(hooks.flatMap((h) => { const at = hookReloadAt(h); return at === undefined ? [] : [at - backAt]; }))}`,
    });

    expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
    for (const [i, client] of group.entries()) {
      const state = client.channel(channel);
      const ids = state.ids;
      const missing = publisher.published.filter((e) => e.phase === 'before' && !ids.has(e.id));
      expect(missing.map((e) => e.seq), `${client.name}: events acknowledged before the kill, never received`).to.deep.equal([]);
      expect(accounts[i]!.duplicatesAfterDedup, `${client.name}: applied twice`).to.equal(0);
      expect(accounts[i]!.outOfOrder, `${client.name}: out of order`).to.equal(0);
      // The history is gone: the client must have been told to reload, after the restart.
      expect(state.reloads.filter((r) => r.at >= backAt), `${client.name}: no recovered:false after the restart (violations: ${state.violations.slice(0, 2).join(' | ')})`).to.have.length.at.least(1);
      expect(state.violations, `${client.name}: pushes that did not follow its position`).to.deep.equal([]);
    }
    for (const hook of hooks) {
      expect(hookReloadAt(hook), `${hook.name}: recovered:false after the restart (confirmations ${JSON.stringify(hook.confirmations.map((c) => c.recovered))})`).to.be.a('number');
      expect(hookMissing(hook), `${hook.name}: events missing`).to.deep.equal([]);
      const seqs = hook.events.flatMap((e) => (e.seq === undefined ? [] : [e.seq]));
      expect(new Set(seqs).size, `${hook.name}: an event handed over twice`).to.equal(seqs.length);
    }
    expect(bellState.recoveredNotifications.length, 'notifications_recovered frames').to.be.at.least(1);
    expect(missed.filter((n) => !bellState.notificationIds.includes(n.id)).map((n) => n.title), 'notifications created while Redis was down').to.deep.equal([]);
  });

  it('only the subscriber connection killed, history kept: every event reaches every client in order, nobody reloads', async function () {
    const { postId, channel } = await postChannel();
    const group = await connectClients(channel);
    const publisher = publisherFor(postId, channel);
    await publisher.ready();
    publisher.start();
    await sleep(1_000);

    const kills: number[] = [];
    for (let round = 0; round < 3; round++) {
      expect(await redis.killClients(`fonana-ws-sub:${nodeId}`), 'subscriber connections killed').to.equal(1);
      kills.push(Date.now());
      await sleep(800);
    }
    await sleep(1_000);
    await publisher.stop();
    await settle(group, channel, publisher);

    const accounts = group.map((c) => account(c, channel, publisher.published));
    const sum = totals(accounts, publisher.published.length);
    // Per kill, the first event acknowledged after it (published while the node's subscriber was
    // away): how long after its acknowledgement each client had it.
    const caughtUp = kills.flatMap((killedAt) => {
      const first = publisher.published.find((e) => e.ackedAt >= killedAt);
      return group.map((c) => {
        const applied = c.channel(channel).applied.find((a) => a.id === first?.id);
        return applied ? Math.max(0, applied.at - first!.ackedAt) : -1;
      });
    });
    report('Redis CLIENT KILL of the node’s subscriber (3 times)', {
      'published (acked)': sum.published,
      'delivered': `${sum.deliveries} of ${sum.expected}`,
      'reloads': sum.reloads,
      'lost': sum.lost,
      'duplicates after dedup': sum.duplicatesAfterDedup,
      'raw duplicates dropped': sum.rawDuplicates,
      'out of order': sum.outOfOrder,
      'position violations': sum.violations,
      'delay of the first event after each kill (ack → client)': summarize(caughtUp),
    });
    expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
    expect(sum.deliveries, 'every event to every client').to.equal(sum.expected);
    expect(sum.reloads, 'reloads').to.equal(0);
    expect(sum.duplicatesAfterDedup).to.equal(0);
    expect(sum.outOfOrder).to.equal(0);
    expect(sum.violations, 'position violations').to.equal(0);
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).to.match(/ws_history_recoveries_total\{outcome="recovered",trigger="(reconnect|gap)"\} [1-9]/);
  });

  it('the node’s link stalls while events are published, then Redis restarts: nothing is lost silently, clients reload', async function () {
    const { proxy, url } = await TcpProxy.forUrl(redis.url);
    const stalledId = `drill-stall-${randomBytes(3).toString('hex')}`;
    let node: ServerProcess | undefined;
    try {
      node = await startServer({
        env: { REDIS_URL: url, REDIS_CHANNEL_PREFIX: PREFIX, NODE_ID: stalledId, LOG_LEVEL: 'info', CONNECT_RATE_PER_IP: '1000', CONNECT_BURST_PER_IP: '1000' },
      });
      const { postId, channel } = await postChannel();
      const group = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const client = new DrillClient({ urls: [node!.url], token: tokens[i % USERS]!, channels: [channel], name: `s${i}` });
          clients.push(client);
          await client.start();
          return client;
        }),
      );
      const publisher = publisherFor(postId, channel);
      await publisher.ready();
      publisher.start();
      await sleep(1_000);

      // The link stalls, and Redis drops the node's subscriber: the node does not know yet.
      proxy.pause();
      expect(await redis.killClients(`fonana-ws-sub:${stalledId}`)).to.equal(1);
      publisher.phase = 'stalled';
      await sleep(600);
      const stalled = publisher.published.filter((e) => e.phase === 'stalled').length;
      await redis.kill();
      await redis.restart();
      const backAt = Date.now();
      publisher.phase = 'after';
      await sleep(300);
      proxy.resume();
      await sleep(2_000);
      await publisher.stop();
      await settle(group, channel, publisher);

      const accounts = group.map((c) => account(c, channel, publisher.published));
      const sum = totals(accounts, publisher.published.length);
      report('stalled link, events published, Redis restarted, link back', {
        'published (acked)': `${sum.published} (${stalled} while the node's link was stalled)`,
        'delivered': `${sum.deliveries} of ${sum.expected}`,
        'covered by a reload': sum.coveredByReload,
        'reloads (recovered:false)': sum.reloads,
        'resubscribe notices': sum.resubscribeNotices,
        'lost': sum.lost,
        'duplicates after dedup': sum.duplicatesAfterDedup,
        'position violations': sum.violations,
        'reload latency (Redis back → recovered:false)': summarize(group.flatMap((c) => c.channel(channel).reloads.slice(0, 1).map((r) => r.at - backAt))),
      });
      expect(stalled, 'events published while the link was stalled').to.be.greaterThan(5);
      expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
      expect(sum.duplicatesAfterDedup).to.equal(0);
      expect(sum.outOfOrder).to.equal(0);
      for (const client of group) expect(client.channel(channel).reloads, `${client.name} reloads`).to.have.length.at.least(1);
    } finally {
      await node?.stop();
      await proxy.close();
    }
  });
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
