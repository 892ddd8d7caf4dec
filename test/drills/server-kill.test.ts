/**
 * Fault drill: the WebSocket server is SIGKILLed with clients connected and a steady publisher
 * running (the test run's Redis, a prefix of its own), then started again on the same port.
 * Clients reconnect with jittered backoff and subscribe with `since`: every event published
 * meanwhile comes back (`recovered: true`), in order, once. Two kinds of client at once: the
 * drills' reference client (support/drill-client.ts) and the browser hook's own RealtimeClient
 * (hooks/realtime/client.ts, its default backoff) on `ws` sockets. Prints the counts and the
 * recovery latency (from each socket's reconnect to its last recovered event).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { channelName } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { freePort } from '../support/ports.ts';
import { testRedisPrefix, testRedisUrl } from '../support/env.ts';
import { DrillClient } from './support/drill-client.ts';
import { HookClient } from './support/hook-client.ts';
import { account, describeLost, recoveryLatencies, report, settled, summarize, totals } from './support/ledger.ts';
import { SteadyPublisher, sleep } from './support/publisher.ts';

const CLIENTS = 16;
const HOOK_CLIENTS = 8;
/**
 * Events per second. A post_ channel keeps 200 events (protocol/history.ts): a client away for
 * longer than 200 / RATE seconds is told to reload instead. A loaded machine takes several
 * seconds to start the server again, and the hook's backoff grows to 15 s: 10/s leaves 20 s.
 */
const RATE = 10;
const USERS = 4;

describe('drill: WebSocket server SIGKILLed and restarted', function () {
  this.timeout(60_000);

  let server: ServerProcess | undefined;
  let fixtures: Fixtures;
  let publisher: SteadyPublisher | undefined;
  const clients: DrillClient[] = [];
  const hooks: HookClient[] = [];
  let prefix: string;
  let port: number;

  const start = () =>
    startServer({
      env: {
        WS_PORT: String(port),
        REDIS_CHANNEL_PREFIX: prefix,
        LOG_LEVEL: 'info',
        CONNECT_RATE_PER_IP: '1000',
        CONNECT_BURST_PER_IP: '1000',
      },
    });

  before(async function () {
    prefix = testRedisPrefix(`drill-kill-${randomBytes(3).toString('hex')}:`);
    fixtures = new Fixtures();
    port = await freePort();
    server = await start();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stdout.write(`      server log (tail):\n${server?.log().slice(-3000)}\n`);
  });

  after(async () => {
    for (const client of clients) client.stop();
    for (const hook of hooks) hook.stop();
    await publisher?.close();
    await server?.stop();
    await fixtures?.close();
  });

  it('clients reconnect and recover everything published meanwhile: recovered true, all events, in order, once', async function () {
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => fixtures.user({ name: `kill${i}` })));
    const tokens = await Promise.all(users.map((u) => mintSessionToken(u.id)));
    const url = `ws://127.0.0.1:${port}`;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const client = new DrillClient({ urls: [url], token: tokens[i % USERS]!, channels: [channel], name: `c${i}`, backoff: { baseMs: 250, capMs: 2_000 } });
        clients.push(client);
        await client.start();
      }),
    );

    for (let i = 0; i < HOOK_CLIENTS; i++) {
      const hook = new HookClient({ url, token: tokens[i % USERS]!, channel, name: `hook${i}` });
      hooks.push(hook);
      hook.start();
    }
    await until(() => hooks.every((h) => h.subscribed), 'the hook clients subscribed');

    publisher = new SteadyPublisher({ redisUrl: testRedisUrl(), prefix, channel, postId: post.id, rate: RATE, idPrefix: `kill-${randomBytes(3).toString('hex')}` });
    await publisher.ready();
    publisher.start();
    await sleep(1_500);

    const killed = server!;
    await killed.stop('SIGKILL');
    const killedAt = Date.now();
    publisher.phase = 'server down';
    await sleep(1_500);
    server = await start();
    const upAt = Date.now();
    publisher.phase = 'after';
    await sleep(1_500);
    await publisher.stop();

    const deadline = Date.now() + 20_000;
    const hookHasAll = (h: HookClient) => publisher!.published.every((e) => h.ids().has(e.id));
    while (!clients.every((c) => c.allSubscribed && settled(c, channel, publisher!.published)) || !hooks.every(hookHasAll)) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }

    const accounts = clients.map((c) => account(c, channel, publisher!.published));
    const sum = totals(accounts, publisher.published.length);
    const latencies = recoveryLatencies(clients);
    const whileDown = publisher.published.filter((e) => e.phase === 'server down').length;
    const hookSeqs = hooks.map((h) => h.events.flatMap((e) => (e.seq === undefined ? [] : [e.seq])));
    const expectedSeqs = publisher.published.map((e) => e.seq);
    const hookReconnects = hooks.flatMap((h) => h.confirmations.filter((c) => c.resubscribed));
    report('SIGKILL of the WebSocket server, restart on the same port', {
      'published (acked)': `${sum.published} (${whileDown} while the server was down)`,
      'server down': `${upAt - killedAt} ms (kill → new process listening)`,
      'delivered': `${sum.deliveries} of ${sum.expected}`,
      'reconnects': `${clients.reduce((n, c) => n + c.reconnects.length, 0)} (failed attempts ${clients.reduce((n, c) => n + c.failedAttempts, 0)}); close codes ${[...new Set(clients.flatMap((c) => c.closeCodes))].join(',')}`,
      'recovered: true': `${clients.flatMap((c) => c.reconnects.flatMap((r) => r.recovered)).filter(Boolean).length} of ${clients.flatMap((c) => c.reconnects.flatMap((r) => r.recovered)).length}`,
      'replayed per reconnect': summarize(clients.flatMap((c) => c.reconnects.map((r) => r.replayed)), 'events'),
      'reloads': sum.reloads,
      'lost': sum.lost,
      'duplicates after dedup': sum.duplicatesAfterDedup,
      'raw duplicates dropped': sum.rawDuplicates,
      'out of order': sum.outOfOrder,
      'position violations': sum.violations,
      'recovery latency (reconnect → last recovered event)': summarize(latencies),
      'hook clients (RealtimeClient)': `${hooks.length}: events ${hookSeqs.reduce((n, q) => n + q.length, 0)} of ${expectedSeqs.length * hooks.length}, resubscribes ${hookReconnects.length} (recovered: true ${hookReconnects.filter((c) => c.recovered === true).length}), exactly 1..N in order: ${hookSeqs.filter((q) => JSON.stringify(q) === JSON.stringify(expectedSeqs)).length} of ${hooks.length}`,
      'hook recovery latency (open → last recovered event)': summarize(hooks.flatMap((h) => h.recoveryLatencies(publisher!.published))),
      'hook time to recover (kill → open)': summarize(hooks.flatMap((h) => h.opens.slice(1, 2).map((t) => t - killedAt))),
      'time to recover (kill → last recovered event)': summarize(clients.flatMap((c) => c.reconnects.filter((r) => r.recoveredAt).map((r) => r.recoveredAt! - killedAt))),
    });

    expect(sum.lost, `lost events:\n${describeLost(accounts)}`).to.equal(0);
    expect(sum.deliveries, 'every event to every client').to.equal(sum.expected);
    expect(sum.reloads, 'reloads (recovered:false)').to.equal(0);
    expect(sum.duplicatesAfterDedup, 'applied twice').to.equal(0);
    expect(sum.outOfOrder, 'out of order').to.equal(0);
    expect(sum.violations, 'position violations').to.equal(0);
    expect(whileDown, 'events published while the server was down').to.be.greaterThan(5);
    for (const [i, hook] of hooks.entries()) {
      expect(hookSeqs[i], `${hook.name}: what the application got`).to.deep.equal(expectedSeqs);
      const resubscribes = hook.confirmations.filter((c) => c.resubscribed);
      expect(resubscribes.length, `${hook.name} resubscribes`).to.be.at.least(1);
      expect(resubscribes.every((c) => c.recovered === true), `${hook.name}: recovered flags ${JSON.stringify(resubscribes.map((c) => c.recovered))}`).to.equal(true);
    }
    for (const client of clients) {
      expect(client.reconnects, `${client.name} reconnects`).to.have.length.at.least(1);
      expect(client.reconnects.flatMap((r) => r.recovered), `${client.name}: recovered flags`).to.satisfy((flags: boolean[]) => flags.length > 0 && flags.every(Boolean));
      // In order and once: the applied sequence numbers are exactly 1..N.
      expect(client.channel(channel).applied.flatMap((a) => (a.seq === undefined ? [] : [a.seq])), `${client.name}: applied sequence`).to.deep.equal(publisher.published.map((e) => e.seq));
    }
  });
});

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
