/**
 * The browser's connection logic (hooks/realtime/client.ts) run in Node against the real
 * WebSocket server, with `ws` standing in for the browser's WebSocket: state machine, backoff,
 * close codes, resubscription. Short backoff windows keep it fast.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { fullJitterDelay } from '../../hooks/realtime/backoff.ts';
import { RealtimeClient, type WebSocketLike } from '../../hooks/realtime/client.ts';
import { SignedOutError, type RealtimeEndpoint } from '../../hooks/realtime/endpoint.ts';
import type { ConnectionState } from '../../hooks/realtime/state.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { channelName, type PushFrame } from '../../websocket-server/src/protocol/index.ts';
import { testDatabaseUrl, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { freePort } from '../support/ports.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

describe('RealtimeClient (the hook’s socket)', function () {
  this.timeout(30_000);

  describe('fullJitterDelay', () => {
    it('is uniform in [0, min(cap, base·2^attempt))', () => {
      const options = { baseMs: 500, capMs: 15_000 };
      expect(fullJitterDelay(0, options, () => 0)).to.equal(0);
      expect(fullJitterDelay(0, options, () => 0.999999)).to.equal(499);
      expect(fullJitterDelay(3, options, () => 0.5)).to.equal(2_000);
      expect(fullJitterDelay(10, options, () => 0.999999)).to.equal(14_999);
    });
  });

  describe('against the server', () => {
    let prisma: PrismaClient;
    let server: ServerProcess;
    let userId: string;
    const clients: RealtimeClient[] = [];

    before(async () => {
      prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 1 });
      const email = `rt-client-${Date.now()}@example.com`;
      userId = (await prisma.user.create({ data: { email, name: 'RT', passwordHash: 'x' } })).id;
      server = await startServer({ broker: 'memory' });
    });

    after(async () => {
      for (const client of clients) client.stop();
      await server?.stop();
      await prisma.user.deleteMany({ where: { id: userId } });
      await prisma.$disconnect();
    });

    /** The backoff of makeClient's clients unless a test sets its own. */
    const BACKOFF = { baseMs: 20, capMs: 100 };

    /**
     * The proof point of "no further attempt": resolves once every retry timer the client can
     * have armed before this call has fired. Full-jitter delays are below `capMs` (plus the
     * server's retry_after_ms, which none of the closes it is used after carries); Node runs due
     * timers in order of expiry, so a timer of `capMs + 1` armed now expires after all of them;
     * and the immediate after it runs only once that timers phase is over. A retry calls the
     * endpoint synchronously, so an attempt not recorded by then was never scheduled.
     */
    const pastEveryRetryArmedBefore = async (capMs: number) => {
      await wait(capMs + 1);
      await new Promise((resolve) => setImmediate(resolve));
    };

    /** A counter from the server's GET /metrics, summed over its labels. */
    async function serverCounter(name: string): Promise<number> {
      const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
      let total = 0;
      let found = false;
      for (const line of text.split('\n')) {
        const match = /^(\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
        if (match?.[1] === name) {
          found = true;
          total += Number(match[2]);
        }
      }
      if (!found && !text.includes(`# TYPE ${name} counter`)) throw new Error(`no counter ${name} in /metrics`);
      return total;
    }

    function makeClient(endpoint: (opts: { fresh: boolean }) => Promise<RealtimeEndpoint>, overrides: Partial<ConstructorParameters<typeof RealtimeClient>[0]> = {}) {
      const states: ConnectionState[] = [];
      const client: RealtimeClient = new RealtimeClient({
        endpoint,
        createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike,
        location: { protocol: 'http:', host: '127.0.0.1' },
        backoff: BACKOFF,
        ...overrides,
      });
      // The state before start(), then every change (a patch that keeps the state is no change).
      states.push(client.getSnapshot().state);
      client.subscribeState(() => {
        const { state } = client.getSnapshot();
        if (states.at(-1) !== state) states.push(state);
      });
      clients.push(client);
      return { client, states };
    }

    const validEndpoint = (url: () => string) => async () =>
      ({ url: url(), token: await mintSessionToken(userId), expiresAt: Date.now() + 300_000 }) satisfies RealtimeEndpoint;

    async function publish(channel: string, type: string, data: unknown): Promise<void> {
      const response = await fetch(`${server.httpUrl}/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel, type, data }),
      });
      expect(response.status).to.equal(202);
    }

    it('connects, subscribes, delivers pushes, and resubscribes by itself after a restart (1001)', async () => {
      // Windows wide enough that ten attempts outlast the server's restart (~1.5 s under tsx).
      const { client, states } = makeClient(validEndpoint(() => server.url), { backoff: { baseMs: 200, capMs: 2_000 } });
      const received: PushFrame[] = [];
      let confirmations = 0;
      const channel = channelName.notifications(userId);
      client.subscribe(channel, { onEvent: (f) => received.push(f), onSubscribed: () => confirmations++ });
      client.start();
      await until(() => confirmations === 1, 'the first subscribe');
      // The subscribe pushes the unread snapshot at once.
      await until(() => received.some((f) => f.type === 'unread_notifications'), 'the unread snapshot');

      const port = server.port;
      await server.stop();
      await until(() => client.getSnapshot().state === 'reconnecting', 'reconnecting');
      server = await startServer({ broker: 'memory', env: { WS_PORT: String(port) } });
      await until(() => confirmations === 2, 'the resubscribe', 15_000);
      expect(client.getSnapshot()).to.include({ state: 'open', attempt: 0 });
      // Consecutive repeats are collapsed; it starts from the initial 'closed'.
      expect(states).to.deep.equal(['closed', 'connecting', 'open', 'reconnecting', 'open']);

      await publish(channel, 'notifications_cleared', { unreadCount: 0 });
      await until(() => received.some((f) => f.type === 'notifications_cleared'), 'the push after reconnecting');
      client.stop();
      expect(client.getSnapshot()).to.include({ state: 'closed', closedReason: 'stopped' });
    });

    it('after 4001 fetches a fresh token once, then stops (no reconnect storm)', async () => {
      const calls: boolean[] = [];
      const refusedBefore = await serverCounter('ws_handshake_rejections_total');
      const acceptedBefore = await serverCounter('ws_connections_total');
      const { client } = makeClient(async ({ fresh }) => {
        calls.push(fresh);
        return { url: server.url, token: await mintSessionToken(userId, { secret: 'not-the-secret' }), expiresAt: null };
      });
      client.start();
      await until(() => client.getSnapshot().state === 'closed', 'closed');
      expect(client.getSnapshot()).to.include({ closedReason: 'unauthorized', lastCloseCode: 4001 });
      // Positive control: both attempts were made, reached the server, and were refused there
      // (the server counts a refusal before it closes the socket with 4001).
      expect(calls).to.deep.equal([false, true]);
      expect((await serverCounter('ws_handshake_rejections_total')) - refusedBefore, 'handshakes refused').to.equal(2);

      await pastEveryRetryArmedBefore(BACKOFF.capMs);
      expect(calls, 'endpoint calls after closing').to.deep.equal([false, true]);
      expect(client.getSnapshot().state).to.equal('closed');
      expect((await serverCounter('ws_handshake_rejections_total')) - refusedBefore, 'handshakes refused').to.equal(2);
      expect((await serverCounter('ws_connections_total')) - acceptedBefore, 'connections accepted').to.equal(0);
    });

    it('gives up after 10 failed attempts and is then closed (the app polls)', async () => {
      const deadPort = await freePort();
      let attempts = 0;
      const { client } = makeClient(
        async () => {
          attempts++;
          return { url: `ws://127.0.0.1:${deadPort}`, token: 'x', expiresAt: null };
        },
        { backoff: { baseMs: 5, capMs: 20 }, probeIntervalMs: 0 },
      );
      client.start();
      await until(() => client.getSnapshot().state === 'closed', 'giving up', 10_000);
      expect(client.getSnapshot()).to.include({ closedReason: 'gave_up', attempt: 10 });
      expect(attempts).to.equal(11); // the first try and 10 retries
      await pastEveryRetryArmedBefore(20);
      expect(attempts, 'endpoint calls after giving up').to.equal(11);
      expect(client.getSnapshot()).to.include({ state: 'closed', closedReason: 'gave_up' });
    });

    it('stops when the token endpoint says the user signed out', async () => {
      const { client } = makeClient(async () => {
        throw new SignedOutError('401');
      });
      client.start();
      await until(() => client.getSnapshot().state === 'closed', 'closed');
      expect(client.getSnapshot().closedReason).to.equal('signed_out');
    });

    it('reports a refused channel and keeps the others', async () => {
      const { client } = makeClient(validEndpoint(() => server.url));
      const errors: string[] = [];
      client.subscribe(channelName.notifications('someone-else'), { onEvent: () => {}, onError: (e) => errors.push(e.code) });
      let ok = false;
      client.subscribe(channelName.notifications(userId), { onEvent: () => {}, onSubscribed: () => (ok = true) });
      client.start();
      await until(() => errors.length === 1 && ok, 'both replies');
      expect(errors).to.deep.equal(['forbidden']);
      expect(client.channelStatus(channelName.notifications('someone-else'))).to.include({ status: 'error', code: 'forbidden' });
      client.stop();
    });
  });
});
