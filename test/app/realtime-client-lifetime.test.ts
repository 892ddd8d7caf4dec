/**
 * How long access lasts, as the browser's connection logic (hooks/realtime/) sees it, run in
 * Node with `ws` standing in for the browser's WebSocket against the real WebSocket server:
 * refresh ahead of expiry, 4002 without a refresh, 4003, a subscription the server ends itself,
 * backoff that holds against a server that accepts and closes at once, and `retryNow` leaving
 * an attempt in flight alone. Pure functions (refresh margin, backoff floor) are checked first.
 * Channel retries need replies the real server gives only when its database fails
 * (`internal_error`) or under load (`rate_limited`), so those two run against a scripted peer.
 */
import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { retryDelay } from '../../hooks/realtime/backoff.ts';
import { RealtimeClient, type RealtimeClientOptions, type WebSocketLike } from '../../hooks/realtime/client.ts';
import type { RealtimeEndpoint } from '../../hooks/realtime/endpoint.ts';
import { DEFAULT_REFRESH, refreshDelay } from '../../hooks/realtime/session-refresh.ts';
import type { ConnectionSnapshot } from '../../hooks/realtime/state.ts';
import { CONTROL_CHANNEL, channelName, type ControlMessage, type PushFrame } from '../../websocket-server/src/protocol/index.ts';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testRedisPrefix, testRedisUrl } from '../support/env.ts';
import { freePort } from '../support/ports.ts';

type Frame = { type: string; [key: string]: unknown };

async function until(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * What went over every socket a client opened, recorded beside the client's own handlers (so a
 * close is seen even after the client let go of the socket). `hold` keeps incoming frames from
 * the client until `release()`: a socket that is open but not yet `connected` for the client.
 */
class Wire {
  readonly sockets: WebSocket[] = [];
  readonly openedAt: number[] = [];
  readonly sent: Frame[] = [];
  readonly received: Frame[] = [];
  readonly closes: Array<{ code: number; reason: string; at: number }> = [];
  hold = false;
  #released: Array<() => void> = [];

  constructor(readonly headers: () => Record<string, string> = () => ({})) {}

  factory = (url: string, protocols: string[]): WebSocketLike => {
    const ws = new WebSocket(url, protocols, { headers: this.headers() });
    this.sockets.push(ws);
    this.openedAt.push(Date.now());
    ws.on('message', (data) => this.received.push(JSON.parse(data.toString()) as Frame));
    ws.on('close', (code, reason) => this.closes.push({ code, reason: reason.toString(), at: Date.now() }));
    ws.on('error', () => {});
    const wire = this;
    // The client sets its handlers as properties, as on a browser WebSocket.
    const socket = {
      get readyState() {
        return ws.readyState;
      },
      send(data: string) {
        wire.sent.push(JSON.parse(data) as Frame);
        ws.send(data);
      },
      close(code?: number, reason?: string) {
        ws.close(code, reason);
      },
      set onmessage(handler: ((event: { data: unknown }) => void) | null) {
        ws.onmessage = handler
          ? (event) => {
              if (wire.hold) wire.#released.push(() => handler({ data: event.data }));
              else handler({ data: event.data });
            }
          : null;
      },
      set onclose(handler: ((event: { code: number; reason: string }) => void) | null) {
        ws.onclose = handler ? (event) => handler({ code: event.code, reason: event.reason }) : null;
      },
      set onerror(handler: (() => void) | null) {
        ws.onerror = handler ? () => handler() : null;
      },
    };
    return socket as unknown as WebSocketLike;
  };

  release(): void {
    this.hold = false;
    const pending = this.#released;
    this.#released = [];
    for (const deliver of pending) deliver();
  }

  sentOf(type: string, channel?: string): Frame[] {
    return this.sent.filter((f) => f.type === type && (channel === undefined || f.channel === channel));
  }

  receivedOf(type: string): Frame[] {
    return this.received.filter((f) => f.type === type);
  }
}

const clients: RealtimeClient[] = [];

function makeClient(endpoint: RealtimeClientOptions['endpoint'], overrides: Partial<RealtimeClientOptions> & { wire?: Wire } = {}) {
  const wire = overrides.wire ?? new Wire();
  const snapshots: ConnectionSnapshot[] = [];
  const logs: Array<{ message: string; fields?: Record<string, unknown> }> = [];
  const client = new RealtimeClient({
    endpoint,
    createSocket: wire.factory,
    location: { protocol: 'http:', host: '127.0.0.1' },
    backoff: { baseMs: 20, capMs: 100 },
    onLog: (message, fields) => logs.push({ message, ...(fields ? { fields } : {}) }),
    ...overrides,
  });
  client.subscribeState(() => snapshots.push(client.getSnapshot()));
  clients.push(client);
  /** States in order, consecutive repeats collapsed. */
  const states = () => snapshots.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]);
  return { client, wire, snapshots, states, logs };
}

function gapsBetween(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

/** From each close to the next socket: the client's own wait, without handshake times. */
function waitsAfterCloses(wire: Wire): number[] {
  return wire.closes.flatMap((close, i) => (wire.openedAt[i + 1] === undefined ? [] : [wire.openedAt[i + 1]! - close.at]));
}

describe('RealtimeClient: session lifetime, revocation and backoff', function () {
  this.timeout(40_000);

  afterEach(() => {
    for (const client of clients.splice(0)) client.stop();
  });

  describe('refreshDelay (when to refresh ahead of expiry)', () => {
    it('waits the remaining time less max(5 s, 25 %), less up to 10 % of the wait at random', () => {
      const fiveMinutes = 300_000;
      // No jitter: 300 s − 75 s.
      expect(refreshDelay(fiveMinutes, DEFAULT_REFRESH, () => 0)).to.equal(225_000);
      // Full jitter: 10 % of the 225 s wait taken off.
      expect(refreshDelay(fiveMinutes, DEFAULT_REFRESH, () => 0.999999)).to.be.within(202_500, 202_501);
      // 25 % of 20 s is below the 5 s floor: 20 s − 5 s.
      expect(refreshDelay(20_000, DEFAULT_REFRESH, () => 0)).to.equal(15_000);
    });

    it('never waits less than half the remaining time less jitter, so short tokens do not loop', () => {
      // 3 s left: a 5 s margin would mean "now", again and again; half of it is kept instead.
      expect(refreshDelay(3_000, DEFAULT_REFRESH, () => 0)).to.equal(1_500);
      expect(refreshDelay(3_000, DEFAULT_REFRESH, () => 0.999999)).to.be.within(1_350, 1_351);
      for (const remaining of [1, 400, 2_000, 9_999, 10_000, 60_000, 3_600_000]) {
        const delay = refreshDelay(remaining, DEFAULT_REFRESH, () => 0.5);
        expect(delay, `${remaining} ms left`).to.be.at.least(Math.floor(remaining * 0.45) - 1).and.below(remaining);
      }
    });

    it('is 0 when the session has already expired or the expiry is unknown', () => {
      expect(refreshDelay(0)).to.equal(0);
      expect(refreshDelay(-5_000)).to.equal(0);
      expect(refreshDelay(Number.NaN)).to.equal(0);
    });
  });

  describe('retryDelay (backoff with the server’s floor)', () => {
    const options = { baseMs: 500, capMs: 15_000 };

    it('is the server’s hint plus the full-jitter delay on top', () => {
      expect(retryDelay(0, 2_000, options, () => 0)).to.equal(2_000);
      expect(retryDelay(0, 2_000, options, () => 0.5)).to.equal(2_250);
      expect(retryDelay(3, 2_000, options, () => 0.5)).to.equal(4_000);
    });

    it('without a usable hint is the plain full-jitter delay', () => {
      for (const hint of [null, undefined, 0, -10, Number.NaN]) {
        expect(retryDelay(2, hint, options, () => 0.5), String(hint)).to.equal(1_000);
      }
    });
  });

  describe('against the server', () => {
    let fixtures: Fixtures;
    let server: ServerProcess;
    let redis: Redis;
    let userId: string;

    before(async () => {
      fixtures = new Fixtures();
      userId = (await fixtures.user({ name: 'lifetime' })).id;
      server = await startServer();
      redis = new Redis(testRedisUrl());
    });

    after(async () => {
      redis?.disconnect();
      await server?.stop();
      await fixtures?.close();
    });

    const tokenEndpoint =
      (forUser: () => string, maxAgeSeconds: number, calls: boolean[] = []) =>
      async ({ fresh }: { fresh: boolean }): Promise<RealtimeEndpoint> => {
        calls.push(fresh);
        return { url: server.url, token: await mintSessionToken(forUser(), { maxAgeSeconds }), expiresAt: Date.now() + maxAgeSeconds * 1000 };
      };

    async function control(message: ControlMessage): Promise<void> {
      const receivers = await redis.publish(`${testRedisPrefix('ws:')}${CONTROL_CHANNEL}`, JSON.stringify(message));
      expect(receivers, 'the server listens to the control channel').to.be.at.least(1);
    }

    async function publish(channel: string, type: string, data: unknown): Promise<void> {
      await redis.publish(`${testRedisPrefix('ws:')}${channel}`, JSON.stringify({ type, data }));
    }

    /** A round trip through the server on another socket: everything before it has happened. */
    async function roundTrip(): Promise<void> {
      const other = await fixtures.user({ name: 'witness' });
      const witness = await TestClient.connect(server.url, { token: await mintSessionToken(other.id) });
      const pong = await witness.request({ type: 'ping' });
      expect(pong.type).to.equal('pong');
      witness.close();
    }

    it('(a) stays open past several token expiries by refreshing in place', async () => {
      const calls: boolean[] = [];
      const { client, wire, states } = makeClient(tokenEndpoint(() => userId, 3, calls));
      const channel = channelName.notifications(userId);
      const pushes: PushFrame[] = [];
      let confirmations = 0;
      client.subscribe(channel, { onEvent: (f) => pushes.push(f), onSubscribed: () => confirmations++ });
      client.start();
      await until(() => confirmations === 1, 'the subscribe');
      const connected = wire.receivedOf('connected')[0]!;
      expect(connected.expiresAt, 'connected carries the token expiry').to.be.a('number');
      const firstExpiry = connected.expiresAt as number;

      // Tokens of 3 s (2–3 s left at the handshake, whole-second exp), refreshed about halfway:
      // wait until three of them have expired, the first and those of two refreshes.
      const expired = () => {
        const refreshed = wire.receivedOf('refreshed');
        return refreshed.length >= 3 && Date.now() > (refreshed[1]!.expiresAt as number) + 100;
      };
      await until(expired, 'three expiries', 20_000);
      expect(wire.receivedOf('refreshed').length).to.be.at.least(3);
      const refreshes = wire.sentOf('refresh');
      expect(new Set(refreshes.map((f) => f.token)).size, 'each refresh carries a new token').to.equal(refreshes.length);
      expect(calls.filter((fresh) => fresh).length, 'refresh tokens are fetched fresh').to.be.at.least(3);
      const expiries = wire.receivedOf('refreshed').map((f) => f.expiresAt as number);
      expect(expiries[0]).to.be.above(firstExpiry);

      // Still the same socket, open all along, and still delivering.
      expect(wire.sockets).to.have.length(1);
      expect(wire.closes).to.deep.equal([]);
      expect(states()).to.deep.equal(['connecting', 'open']);
      expect(confirmations).to.equal(1);
      await publish(channel, 'notifications_cleared', { unreadCount: 0 });
      await until(() => pushes.some((f) => f.type === 'notifications_cleared'), 'a push after the expiries');
    });

    it('(b) without a token to refresh with (cookie mode) is closed with 4002 and reconnects at once, not as a failure', async () => {
      // The browser's cookie jar: the session cookie authenticates the upgrade; each visit to the
      // token endpoint (fresh) renews it, as the app's session handling would.
      let cookie = await mintSessionToken(userId, { maxAgeSeconds: 3 });
      const calls: boolean[] = [];
      const wire = new Wire(() => ({ cookie: `next-auth.session-token=${cookie}` }));
      const { client, snapshots, states } = makeClient(
        async ({ fresh }) => {
          calls.push(fresh);
          if (fresh) cookie = await mintSessionToken(userId, { maxAgeSeconds: 3 });
          return { url: server.url, token: null, expiresAt: null };
        },
        { wire, stableAfterMs: 500, expiredReconnectJitterMs: 200 },
      );
      let confirmations = 0;
      client.subscribe(channelName.notifications(userId), { onEvent: () => {}, onSubscribed: () => confirmations++ });
      client.start();
      await until(() => confirmations === 3, 'two reconnects after expiry', 20_000);

      expect(wire.sentOf('refresh'), 'nothing to refresh with').to.deep.equal([]);
      expect(wire.closes.map((c) => c.code)).to.deep.equal([4002, 4002]);
      expect(calls, 'each reconnect asks the endpoint afresh').to.deep.equal([false, true, true]);
      expect(states()).to.deep.equal(['connecting', 'open', 'reconnecting', 'open', 'reconnecting', 'open']);
      expect(snapshots.filter((s) => s.state === 'reconnecting').map((s) => s.attempt), 'not counted as failures').to.deep.equal([0, 0]);
      // At once: within the small jitter and a handshake, no backoff.
      for (const [i, close] of wire.closes.entries()) {
        expect(wire.openedAt[i + 1]! - close.at, `reconnect ${i + 1}`).to.be.below(1_000);
      }
    });

    it('(b) when the endpoint hands back the same token, sends no refresh, is closed with 4002 and reconnects with a new one', async () => {
      const wire = new Wire();
      let token = await mintSessionToken(userId, { maxAgeSeconds: 3 });
      const issued = [token];
      const { client, states } = makeClient(
        async () => {
          // A stale cache: the same token until the server has ended the socket, then a new one.
          if (wire.closes.length > 0 && issued.length === 1) {
            token = await mintSessionToken(userId, { maxAgeSeconds: 60 });
            issued.push(token);
          }
          return { url: server.url, token, expiresAt: null };
        },
        { wire, stableAfterMs: 500, expiredReconnectJitterMs: 200 },
      );
      client.start();
      await until(() => wire.closes.length === 1 && client.getSnapshot().state === 'open', 'the reconnect after 4002', 15_000);
      expect(wire.closes[0]!.code).to.equal(4002);
      expect(wire.sentOf('refresh'), 'the same token is no refresh').to.deep.equal([]);
      expect(issued).to.have.length(2);
      expect(states()).to.deep.equal(['connecting', 'open', 'reconnecting', 'open']);
      expect(client.getSnapshot().attempt).to.equal(0);
    });

    it('(c) 4003 (account deleted) closes it for good: session_revoked, no reconnect, no probe, retryNow does nothing', async () => {
      const doomed = (await fixtures.user({ name: 'doomed' })).id;
      const calls: boolean[] = [];
      // Any reconnect or probe would start at once: a 1 ms window and a 1 ms probe.
      const { client, wire } = makeClient(tokenEndpoint(() => doomed, 60, calls), { backoff: { baseMs: 1, capMs: 1 }, probeIntervalMs: 1 });
      client.start();
      await until(() => client.getSnapshot().state === 'open', 'open');
      await control({ type: 'user_deleted', userId: doomed });
      await until(() => client.getSnapshot().state === 'closed', 'closed');
      expect(client.getSnapshot()).to.include({ closedReason: 'session_revoked', lastCloseCode: 4003 });
      client.retryNow();
      // Positive control: a round trip through the server on another socket, long after a 1 ms
      // retry or probe would have called the endpoint again.
      await roundTrip();
      expect(calls).to.deep.equal([false]);
      expect(wire.sockets).to.have.length(1);
      expect(client.getSnapshot()).to.include({ state: 'closed', closedReason: 'session_revoked' });
    });

    it('(d) a subscription the server ends itself reaches onRevoked, becomes an error, and is not asked again', async () => {
      const creator = await fixtures.creator('revoker');
      const reader = await fixtures.user({ name: 'reader' });
      const post = await fixtures.post(creator.id, { isLocked: true, requiredTier: 'BASIC' });
      const subscription = await fixtures.subscription(reader.id, creator.id, { tier: 'BASIC' });
      // Channel retries, were there any, would fire within 1 ms.
      const { client, wire } = makeClient(tokenEndpoint(() => reader.id, 60), { backoff: { baseMs: 1, capMs: 1 } });
      const postChannel = channelName.post(post.id);
      const notifications = channelName.notifications(reader.id);
      const revoked: Array<{ reason: string; message: string }> = [];
      const postEvents: PushFrame[] = [];
      const postErrors: string[] = [];
      let postConfirmations = 0;
      client.subscribe(postChannel, {
        onEvent: (f) => postEvents.push(f),
        onSubscribed: () => postConfirmations++,
        onError: (e) => postErrors.push(e.code),
        onRevoked: (reason, message) => revoked.push({ reason, message }),
      });
      const notes: PushFrame[] = [];
      let notesReady = false;
      client.subscribe(notifications, { onEvent: (f) => notes.push(f), onSubscribed: () => (notesReady = true) });
      client.start();
      await until(() => postConfirmations === 1 && notesReady, 'both subscriptions');
      expect(client.channelStatus(postChannel)).to.deep.equal({ status: 'subscribed' });

      await fixtures.prisma.subscription.update({ where: { id: subscription.id }, data: { status: 'CANCELLED' } });
      await control({
        type: 'entitlement_changed',
        cause: 'subscription_cancelled',
        subjects: [{ kind: 'subscription', subscriberId: reader.id, creatorId: creator.id }],
      });
      await until(() => revoked.length === 1, 'onRevoked');
      expect(revoked[0]!.reason).to.equal('forbidden');
      expect(revoked[0]!.message).to.be.a('string').and.not.equal('');
      expect(client.channelStatus(postChannel)).to.deep.include({ status: 'error', code: 'forbidden' });

      // Positive control: an event of the post, then one of the other channel, published in
      // that order; when the second arrives, a resubscribe (1 ms away) would have been sent and
      // the post's event delivered.
      await publish(postChannel, 'post_liked', { postId: post.id, userId: creator.id, likesCount: 7 });
      await publish(notifications, 'notifications_cleared', { unreadCount: 0 });
      await until(() => notes.some((f) => f.type === 'notifications_cleared'), 'the other channel’s event');
      expect(wire.sentOf('subscribe', postChannel), 'asked once, not again').to.have.length(1);
      expect(postEvents.filter((f) => f.type === 'post_liked')).to.deep.equal([]);
      expect(postErrors).to.deep.equal([]);
      expect(postConfirmations).to.equal(1);
      expect(client.getSnapshot().state).to.equal('open');
      expect(client.channelStatus(notifications)).to.deep.equal({ status: 'subscribed' });
    });

    describe('(f) retryNow', () => {
      it('leaves a token fetch in flight alone', async () => {
        const deadPort = await freePort();
        const second = deferred<RealtimeEndpoint>();
        const calls: number[] = [];
        const { client, wire } = makeClient(
          async () => {
            calls.push(Date.now());
            if (calls.length === 1) return { url: `ws://127.0.0.1:${deadPort}`, token: 'x', expiresAt: null };
            return second.promise;
          },
          { backoff: { baseMs: 1, capMs: 1 } },
        );
        client.start();
        await until(() => calls.length === 2, 'the retry’s token fetch');
        expect(client.getSnapshot().state).to.equal('reconnecting');
        client.retryNow();
        client.retryNow();
        // retryNow would call the endpoint synchronously: nothing new, right away.
        expect(calls).to.have.length(2);
        second.resolve({ url: server.url, token: await mintSessionToken(userId), expiresAt: null });
        await until(() => client.getSnapshot().state === 'open', 'open through the attempt in flight');
        expect(calls).to.have.length(2);
        expect(wire.sockets).to.have.length(2); // the dead port, then the server
      });

      it('leaves a socket that is open but not yet connected alone', async () => {
        const wire = new Wire();
        const deadPort = await freePort();
        let calls = 0;
        const { client } = makeClient(
          async () => {
            calls++;
            if (calls === 1) return { url: `ws://127.0.0.1:${deadPort}`, token: 'x', expiresAt: null };
            wire.hold = true;
            return { url: server.url, token: await mintSessionToken(userId), expiresAt: null };
          },
          { wire, backoff: { baseMs: 1, capMs: 1 } },
        );
        client.start();
        // The server's `connected` has arrived on the wire, but the client has not seen it.
        await until(() => wire.receivedOf('connected').length === 1, 'connected on the wire');
        expect(client.getSnapshot().state).to.equal('reconnecting');
        client.retryNow();
        const socket = wire.sockets[1]!;
        expect(socket.readyState, 'not closed by retryNow').to.equal(WebSocket.OPEN);
        expect(wire.sockets).to.have.length(2);
        expect(calls).to.equal(2);
        wire.release();
        await until(() => client.getSnapshot().state === 'open', 'open on that socket');
        expect(wire.sockets).to.have.length(2);
        expect(socket.readyState).to.equal(WebSocket.OPEN);
      });

      it('cuts a pending backoff delay short', async () => {
        const deadPort = await freePort();
        let calls = 0;
        const { client } = makeClient(
          async () => {
            calls++;
            if (calls === 1) return { url: `ws://127.0.0.1:${deadPort}`, token: 'x', expiresAt: null };
            return { url: server.url, token: await mintSessionToken(userId), expiresAt: null };
          },
          // A 59 s wait before the retry.
          { backoff: { baseMs: 60_000, capMs: 60_000 }, random: () => 0.99 },
        );
        client.start();
        await until(() => client.getSnapshot().state === 'reconnecting', 'waiting out the backoff');
        expect(calls).to.equal(1);
        client.retryNow();
        await until(() => client.getSnapshot().state === 'open', 'open long before the delay');
        expect(calls).to.equal(2);
      });
    });
  });

  describe('(e) a server that accepts and then closes at once', () => {
    let fixtures: Fixtures;
    let userId: string;

    before(async () => {
      fixtures = new Fixtures();
      userId = (await fixtures.user({ name: 'flapper' })).id;
    });
    after(() => fixtures?.close());

    it('is retried with growing delays: the backoff level survives `connected` (real server, 4029)', async () => {
      // One frame of burst: the client's second subscribe on `connected` is over the rate.
      const server = await startServer({ broker: 'memory', env: { CLIENT_FRAME_BURST: '1', CLIENT_FRAMES_PER_SECOND: '0.01' } });
      try {
        const { client, wire, snapshots } = makeClient(
          async () => ({ url: server.url, token: await mintSessionToken(userId), expiresAt: null }),
          // Half of each window: 100, 200, 400, 800 ms, plus any hint the server gives.
          { backoff: { baseMs: 200, capMs: 10_000 }, random: () => 0.5, maxAttempts: 20 },
        );
        client.subscribe(channelName.notifications(userId), { onEvent: () => {} });
        client.subscribe(channelName.feed(userId), { onEvent: () => {} });
        client.start();
        await until(() => wire.sockets.length === 5, 'five attempts', 30_000);
        expect(wire.receivedOf('connected').length, 'each one was accepted').to.be.at.least(4);
        expect(wire.closes.slice(0, 4).map((c) => c.code)).to.deep.equal([4029, 4029, 4029, 4029]);
        const waits = waitsAfterCloses(wire);
        expect(waits).to.have.length(4);
        for (let i = 1; i < waits.length; i++) expect(waits[i], `waits ${JSON.stringify(waits)}`).to.be.above(waits[i - 1]!);
        expect(waits.at(-1)! - waits[0]!, `waits ${JSON.stringify(waits)}`).to.be.at.least(400);
        expect(Math.max(...snapshots.map((s) => s.attempt)), 'the attempt counter climbs').to.be.at.least(4);
      } finally {
        await server.stop();
      }
    });

    describe('scripted peers', () => {
      let peer: WebSocketServer;
      let peerUrl: string;
      let onConnection: (ws: WebSocket) => void;

      beforeEach(async () => {
        peer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
        peer.on('connection', (ws) => onConnection(ws));
        await new Promise<void>((resolve) => peer.once('listening', () => resolve()));
        peerUrl = `ws://127.0.0.1:${(peer.address() as AddressInfo).port}`;
      });
      afterEach(async () => {
        for (const ws of peer.clients) ws.terminate();
        await new Promise<void>((resolve) => peer.close(() => resolve()));
      });

      const connectedFrame = () => JSON.stringify({ type: 'connected', userId: 'u1', connectionId: 'c1', expiresAt: Date.now() + 60_000 });

      it('waits at least the close reason’s retry_after_ms before reconnecting (1013)', async () => {
        onConnection = (ws) => {
          ws.send(connectedFrame());
          ws.close(1013, 'database unavailable; retry_after_ms=400');
        };
        const { client, wire } = makeClient(async () => ({ url: peerUrl, token: 't', expiresAt: null }), {
          backoff: { baseMs: 20, capMs: 20 },
        });
        client.start();
        await until(() => wire.sockets.length === 4, 'four attempts', 10_000);
        const waits = waitsAfterCloses(wire);
        expect(waits).to.have.length(3);
        // Without the hint each wait would be under 20 ms.
        for (const wait of waits) expect(wait, `waits ${JSON.stringify(waits)}`).to.be.at.least(400);
      });

      it('retries a subscribe answered internal_error (at least retryAfterMs apart), then subscribes', async () => {
        const subscribeTimes: number[] = [];
        onConnection = (ws) => {
          ws.send(connectedFrame());
          ws.on('message', (data) => {
            const frame = JSON.parse(data.toString()) as Frame;
            if (frame.type !== 'subscribe') return;
            subscribeTimes.push(Date.now());
            const reply =
              subscribeTimes.length <= 2
                ? { type: 'error', id: frame.id, channel: frame.channel, code: 'internal_error', message: 'database down', retryAfterMs: 150 }
                : { type: 'subscribed', id: frame.id, channel: frame.channel };
            ws.send(JSON.stringify(reply));
          });
        };
        const { client } = makeClient(async () => ({ url: peerUrl, token: 't', expiresAt: null }), { backoff: { baseMs: 10, capMs: 10 } });
        const errors: string[] = [];
        let confirmations = 0;
        const statuses: string[] = [];
        client.subscribeChannelStatus(() => statuses.push(client.channelStatus('post_1').status));
        client.subscribe('post_1', { onEvent: () => {}, onSubscribed: () => confirmations++, onError: (e) => errors.push(e.code) });
        client.start();
        await until(() => confirmations === 1, 'the third subscribe confirmed');
        expect(subscribeTimes).to.have.length(3);
        for (const gap of gapsBetween(subscribeTimes)) expect(gap).to.be.at.least(150);
        expect(errors, 'retries are not reported as refusals').to.deep.equal([]);
        expect(statuses).to.not.include('error');
        expect(client.channelStatus('post_1')).to.deep.equal({ status: 'subscribed' });
      });

      it('tells a reply to an unsubscribe from the server ending a channel, and drops what follows the end', async () => {
        const push = (channel: string, likesCount: number) =>
          JSON.stringify({ type: 'post_liked', channel, id: `e${likesCount}`, ts: Date.now(), data: { postId: '3', userId: 'u', likesCount } });
        onConnection = (ws) => {
          ws.send(connectedFrame());
          let subscribed = 0;
          ws.on('message', (data) => {
            const frame = JSON.parse(data.toString()) as Frame;
            if (frame.type !== 'subscribe') return;
            ws.send(JSON.stringify({ type: 'subscribed', id: frame.id, channel: frame.channel }));
            if (++subscribed < 2) return;
            // A late reply to an earlier unsubscribe (it has an id): not the server's decision.
            ws.send(JSON.stringify({ type: 'unsubscribed', channel: 'post_3', id: 999 }));
            ws.send(push('post_3', 1));
            ws.send(JSON.stringify({ type: 'unsubscribed', channel: 'post_3', reason: 'forbidden', message: 'access ended' }));
            // Not to be delivered: it follows the end. The other channel's push is the control.
            ws.send(push('post_3', 2));
            ws.send(push('post_4', 3));
          });
        };
        const { client } = makeClient(async () => ({ url: peerUrl, token: 't', expiresAt: null }));
        const post3: number[] = [];
        const post4: number[] = [];
        const revoked: string[] = [];
        client.subscribe('post_3', {
          onEvent: (f) => post3.push((f.data as { likesCount: number }).likesCount),
          onRevoked: (reason, message) => revoked.push(`${reason}: ${message}`),
        });
        client.subscribe('post_4', { onEvent: (f) => post4.push((f.data as { likesCount: number }).likesCount) });
        client.start();
        await until(() => post4.length === 1, 'the other channel’s push');
        expect(post3).to.deep.equal([1]);
        expect(revoked).to.deep.equal(['forbidden: access ended']);
        expect(client.channelStatus('post_3')).to.deep.equal({ status: 'error', code: 'forbidden', message: 'access ended' });
      });

      it('gives a channel answered rate_limited a bounded number of retries, then leaves it in error', async () => {
        let subscribes = 0;
        let pings = 0;
        onConnection = (ws) => {
          ws.send(connectedFrame());
          ws.on('message', (data) => {
            const frame = JSON.parse(data.toString()) as Frame;
            if (frame.type === 'ping') {
              pings++;
              ws.send(JSON.stringify({ type: 'pong', id: frame.id, ts: Date.now() }));
            }
            if (frame.type !== 'subscribe') return;
            subscribes++;
            ws.send(JSON.stringify({ type: 'error', id: frame.id, channel: frame.channel, code: 'rate_limited', message: 'slow down', retryAfterMs: 5 }));
          });
        };
        const { client } = makeClient(async () => ({ url: peerUrl, token: 't', expiresAt: null }), {
          backoff: { baseMs: 1, capMs: 1 },
          channelRetries: 3,
          pingIntervalMs: 100,
        });
        const errors: string[] = [];
        client.subscribe('post_2', { onEvent: () => {}, onError: (e) => errors.push(e.code) });
        client.start();
        await until(() => errors.length === 1, 'the refusal after the retries');
        // Positive control: two more pings (100 ms apart) reach the peer after the refusal; a
        // fourth retry (5 ms away) would have reached it before the second.
        const pingsAtRefusal = pings;
        await until(() => pings >= pingsAtRefusal + 2, 'two later pings');
        expect(subscribes, 'the first subscribe and 3 retries').to.equal(4);
        expect(errors).to.deep.equal(['rate_limited']);
        expect(client.channelStatus('post_2')).to.deep.include({ status: 'error', code: 'rate_limited' });
        expect(client.getSnapshot().state).to.equal('open');
      });
    });
  });
});
