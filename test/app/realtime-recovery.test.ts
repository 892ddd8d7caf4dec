/**
 * "Nothing lost": the browser's channel logic (hooks/realtime/subscription.ts through
 * RealtimeClient) run in Node with `ws` sockets against the real WebSocket server and Redis.
 * Each channel keeps its position, subscribes again with `since` after a reconnect, a gap or the
 * server's `resubscribe`, applies pushes in offset order exactly once, and tells listeners
 * whether their state survived (`recovered`). The bell's state (hooks/notifications-state.ts)
 * and the post's counter versions (components/post/versions.ts) are pure and checked first.
 *
 * A wire between the client and its socket records every frame with its time and can drop,
 * repeat or inject pushes: the copies and gaps the client must survive, which the real server
 * does not make on purpose.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import {
  initialNotificationsState,
  newestNotificationId,
  notificationsActionFor,
  notificationsReducer,
  type NotificationsAction,
  type NotificationsState,
} from '../../hooks/notifications-state.ts';
import { RealtimeClient, type ChannelListener, type SubscribedInfo, type WebSocketLike } from '../../hooks/realtime/client.ts';
import type { RealtimeEndpoint } from '../../hooks/realtime/endpoint.ts';
import { CounterVersion, versionOf } from '../../components/post/versions.ts';
import { historyKeys, publishWithHistory, readHistory } from '../../websocket-server/src/broker/history-script.ts';
import { channelName, type NotificationPayload, type PushFrame, type StreamPosition } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { TcpProxy } from '../../websocket-server/test/support/tcp-proxy.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testRedisPrefix, testRedisUrl, TEST_PUBLISH_SECRET } from '../support/env.ts';

type Frame = { type: string; [key: string]: unknown };
type Logged = { frame: Frame; at: number };

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Every frame of every socket a client opened, with its time. `tamper` sees each frame on its way
 * to the client and decides what the client gets: `deliver(frame)` once (the default), twice,
 * never, or with other frames before it.
 */
class Wire {
  readonly sockets: WebSocket[] = [];
  readonly sent: Logged[] = [];
  readonly received: Logged[] = [];
  tamper: ((frame: Frame, deliver: (frame: Frame) => void) => void) | null = null;
  /** The client's handler on the current socket. */
  #handler: ((event: { data: unknown }) => void) | null = null;

  factory = (url: string, protocols: string[]): WebSocketLike => {
    const ws = new WebSocket(url, protocols);
    this.sockets.push(ws);
    ws.on('error', () => {});
    const wire = this;
    const socket = {
      get readyState() {
        return ws.readyState;
      },
      send(data: string) {
        wire.sent.push({ frame: JSON.parse(data) as Frame, at: Date.now() });
        ws.send(data);
      },
      close(code?: number, reason?: string) {
        ws.close(code, reason);
      },
      set onmessage(handler: ((event: { data: unknown }) => void) | null) {
        wire.#handler = handler;
        ws.onmessage = handler
          ? (event) => {
              const frame = JSON.parse(String(event.data)) as Frame;
              wire.received.push({ frame, at: Date.now() });
              const deliver = (f: Frame) => handler({ data: JSON.stringify(f) });
              if (wire.tamper) wire.tamper(frame, deliver);
              else deliver(frame);
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

  sentOf(type: string, channel: string): Logged[] {
    return this.sent.filter((e) => e.frame.type === type && e.frame.channel === channel);
  }

  receivedOf(type: string, channel: string): Logged[] {
    return this.received.filter((e) => e.frame.type === type && e.frame.channel === channel);
  }

  /** Hands `frame` to the client as if the current socket had received it. */
  inject(frame: Frame): void {
    this.#handler?.({ data: JSON.stringify(frame) });
  }

  /** Cuts the current socket as a network would (no close frame): the client reconnects. */
  cut(): void {
    this.sockets.at(-1)?.terminate();
  }
}

/** Holds the client's endpoint calls (so a test acts while it is away) until opened. */
class Gate {
  #closed = false;
  #waiters: Array<() => void> = [];

  close(): void {
    this.#closed = true;
  }

  open(): void {
    this.#closed = false;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  pass(): Promise<void> {
    return this.#closed ? new Promise((resolve) => this.#waiters.push(resolve)) : Promise.resolve();
  }
}

/** What one listener of a channel saw. */
function record(client: RealtimeClient, channel: string, extra: Partial<ChannelListener> = {}) {
  const events: PushFrame[] = [];
  const confirmations: SubscribedInfo[] = [];
  const stop = client.subscribe(channel, {
    onEvent: (frame) => events.push(frame),
    onSubscribed: (info) => confirmations.push(info),
    ...extra,
  });
  const likes = () => events.filter((f) => f.type === 'post_liked').map((f) => (f.data as { likesCount: number }).likesCount);
  const offsets = () => events.filter((f) => f.type === 'post_liked').map((f) => f.offset);
  return { events, confirmations, likes, offsets, stop };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const offsetOf = (frame: Frame) => (typeof frame.offset === 'number' ? frame.offset : undefined);

describe('Recovery in the client: positions, since, order, exactly once', function () {
  this.timeout(60_000);

  describe('the bell’s state (notifications-state.ts)', () => {
    const note = (id: string, minute: number, isRead = false): NotificationPayload => ({
      id,
      type: 'LIKE',
      title: `t ${id}`,
      message: 'm',
      isRead,
      createdAt: `2026-11-22T10:${String(minute).padStart(2, '0')}:00.000Z`,
    });
    const at = (offset: number, epoch = 'e1'): StreamPosition => ({ offset, epoch });
    const run = (actions: NotificationsAction[], from: NotificationsState = initialNotificationsState) =>
      actions.reduce(notificationsReducer, from);

    it('ignores an unread snapshot older than the events it applied, and takes one that is not', () => {
      const state = run([
        { type: 'unread_snapshot', notifications: [note('a', 1)], count: 1, at: at(4) },
        { type: 'pushed', notification: note('b', 2), at: at(5) },
        { type: 'read', notificationId: null, unreadCount: 0, at: at(6) },
      ]);
      expect(state.unreadCount).to.equal(0);
      // A snapshot at offset 5 (a late one, from before the read at 6): nothing changes.
      const late = notificationsReducer(state, { type: 'unread_snapshot', notifications: [note('a', 1), note('b', 2)], count: 2, at: at(5) });
      expect(late).to.equal(state);
      // Positive control: the same snapshot at the applied position, or another epoch, applies.
      expect(notificationsReducer(state, { type: 'unread_snapshot', notifications: [note('c', 3)], count: 3, at: at(6) }).unreadCount).to.equal(3);
      expect(notificationsReducer(state, { type: 'unread_snapshot', notifications: [], count: 7, at: at(1, 'e2') }).unreadCount).to.equal(7);
    });

    it('applies each notification once: by id, and by position for a replayed event', () => {
      const state = run([
        { type: 'pushed', notification: note('a', 1), at: at(1) },
        { type: 'pushed', notification: note('a', 1), at: at(2) }, // the same notification again
        { type: 'pushed', notification: note('b', 2), at: at(3) },
        { type: 'read', notificationId: 'a', unreadCount: 1, at: at(4) },
        { type: 'read', notificationId: 'a', unreadCount: 2, at: at(3) }, // at or before the position: a replay
      ]);
      expect(state.items.map((n) => n.id)).to.deep.equal(['b', 'a']);
      expect(state.unreadCount).to.equal(1);
      expect(state.position).to.deep.equal(at(4));
    });

    it('merges notifications_recovered: the new ones on top, no duplicates, its unread count', () => {
      const before = run([{ type: 'unread_snapshot', notifications: [note('a', 1), note('b', 2)], count: 2, at: at(2) }]);
      expect(newestNotificationId(before)).to.equal('b');
      const after = notificationsReducer(before, {
        type: 'recovered',
        notifications: [note('d', 4, true), note('c', 3), note('b', 2)],
        unreadCount: 4,
        at: at(1, 'e2'),
      });
      expect(after.items.map((n) => n.id)).to.deep.equal(['d', 'c', 'b', 'a']);
      expect(after.unreadCount).to.equal(4);
      expect(after.position).to.deep.equal(at(1, 'e2'));
    });

    it('keeps what later events said over a page read before them, and a clear over an older page', () => {
      const live = run([{ type: 'pushed', notification: note('b', 2), at: at(7) }]);
      const page = { notifications: [note('a', 1)], nextCursor: null, unreadCount: 9, position: at(6) };
      const merged = notificationsReducer(live, { type: 'page', page, append: false });
      expect(merged.items.map((n) => n.id)).to.deep.equal(['b', 'a']);
      expect(merged.unreadCount, 'the count after the newer event').to.equal(1);
      const cleared = notificationsReducer(live, { type: 'cleared', unreadCount: 0, at: at(8) });
      expect(notificationsReducer(cleared, { type: 'page', page, append: false }).items).to.deep.equal([]);
      // Positive control: a page read after the events replaces the list.
      const fresh = notificationsReducer(live, { type: 'page', page: { ...page, unreadCount: 5, position: at(8) }, append: false });
      expect(fresh.items.map((n) => n.id)).to.deep.equal(['a']);
      expect(fresh.unreadCount).to.equal(5);
    });

    it('maps pushes to actions with their position', () => {
      const frame = { type: 'notifications_recovered', channel: 'notifications_u', id: 'snapshot:e:3', ts: 1, offset: 3, epoch: 'e', data: { notifications: [], unreadCount: 2 } };
      expect(notificationsActionFor(frame as PushFrame)).to.deep.equal({ type: 'recovered', notifications: [], unreadCount: 2, at: { offset: 3, epoch: 'e' } });
      expect(notificationsActionFor({ ...frame, type: 'post_liked' } as unknown as PushFrame)).to.equal(null);
    });
  });

  describe('counter versions (LivePost)', () => {
    it('ignores a state older than the one applied, never one without a version', () => {
      const gate = new CounterVersion(versionOf({ statsVersion: 5 }));
      expect(gate.admit(4), 'older than the page').to.equal(false);
      expect(gate.admit(5)).to.equal(true);
      expect(gate.admit(7)).to.equal(true);
      expect(gate.admit(6), 'a late answer').to.equal(false);
      expect(gate.admit(undefined)).to.equal(true);
      expect(gate.applied).to.equal(7);
      expect(versionOf({ version: 3, statsVersion: 9 })).to.equal(3);
      expect(versionOf({ likesCount: 1 })).to.equal(undefined);
    });
  });

  describe('against the server', () => {
    let server: ServerProcess;
    let fixtures: Fixtures;
    let redis: Redis;
    let prefix: string;
    const clients: RealtimeClient[] = [];

    before(async () => {
      prefix = testRedisPrefix('ws:');
      fixtures = new Fixtures();
      redis = new Redis(testRedisUrl());
      server = await startServer();
    });
    afterEach(() => {
      for (const client of clients.splice(0)) client.stop();
    });
    after(async () => {
      await server?.stop();
      redis?.disconnect();
      await fixtures?.close();
    });

    /** A client whose endpoint is the current server (it may be restarted on a new port). */
    function makeClient(userId: string, options: { gate?: Gate; url?: () => string } = {}) {
      const wire = new Wire();
      const logs: string[] = [];
      const endpoint = async (): Promise<RealtimeEndpoint> => {
        await options.gate?.pass();
        return { url: options.url?.() ?? server.url, token: await mintSessionToken(userId), expiresAt: null };
      };
      const client = new RealtimeClient({
        endpoint,
        createSocket: wire.factory,
        location: { protocol: 'http:', host: '127.0.0.1' },
        backoff: { baseMs: 20, capMs: 100 },
        // Never give up while a test keeps the server away.
        maxAttempts: 1_000,
        onLog: (message) => logs.push(message),
      });
      clients.push(client);
      return { client, wire, logs };
    }

    async function postChannel() {
      const post = await fixtures.post((await fixtures.creator()).id);
      return { post, channel: channelName.post(post.id) };
    }
    const liked = (postId: string, n: number) => JSON.stringify({ type: 'post_liked', data: { postId, userId: 'u', likesCount: n } });
    const publish = async (channel: string, postId: string, from: number, to = from) => {
      for (let n = from; n <= to; n++) await publishWithHistory(redis, prefix, channel, liked(postId, n));
    };

    it('(a) after a restart of the server, receives the 20 events published meanwhile, in order, once, and hears recovered: true', async () => {
      const { post, channel } = await postChannel();
      const user = await fixtures.user();
      const { client, wire } = makeClient(user.id);
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the first subscribe');
      expect(seen.confirmations[0]).to.deep.equal({ resubscribed: false, wasRecovering: false, recovered: undefined });
      expect(wire.sentOf('subscribe', channel)[0]!.frame, 'nothing to continue from yet').to.not.have.property('since');
      await publish(channel, post.id, 1);
      await until(() => seen.likes().length === 1, 'the first event');
      const before = client.channelPosition(channel)!;
      expect(before.offset).to.be.a('number');

      await server.stop();
      await until(() => client.getSnapshot().state === 'reconnecting', 'reconnecting');
      await publish(channel, post.id, 2, 21);
      server = await startServer();
      await until(() => seen.confirmations.length === 2, 'the resubscribe', 20_000);
      expect(seen.confirmations[1]).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: true });
      const resubscribe = wire.sentOf('subscribe', channel).at(-1)!.frame;
      expect(resubscribe.since, 'since the last applied event').to.deep.equal(before);

      // Positive control: a live event after the replay; when it is there, the replay is over.
      await publish(channel, post.id, 22);
      await until(() => seen.likes().includes(22), 'the live event');
      expect(seen.likes()).to.deep.equal(range(1, 22));
      expect(seen.offsets()).to.deep.equal(range(before.offset, before.offset + 21));
      expect(client.channelPosition(channel)).to.deep.equal({ offset: before.offset + 21, epoch: before.epoch });
    });

    it('(b) when the history is gone (new epoch), hears recovered: false, and continues in the new epoch', async () => {
      const { post, channel } = await postChannel();
      const user = await fixtures.user();
      const gate = new Gate();
      const { client, wire } = makeClient(user.id, { gate });
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the first subscribe');
      await publish(channel, post.id, 1);
      await until(() => seen.likes().length === 1, 'the first event');
      const before = client.channelPosition(channel)!;

      gate.close();
      wire.cut();
      await until(() => client.getSnapshot().state === 'reconnecting', 'reconnecting');
      await publish(channel, post.id, 2, 3);
      const keys = historyKeys(prefix, channel);
      expect(await redis.del(keys.meta, keys.stream)).to.equal(2);
      gate.open();

      await until(() => seen.confirmations.length === 2, 'the resubscribe');
      expect(seen.confirmations[1]).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: false });
      expect(wire.sentOf('subscribe', channel).at(-1)!.frame.since).to.deep.equal(before);
      const reply = wire.receivedOf('subscribed', channel).at(-1)!.frame;
      expect(reply).to.include({ recovered: false });
      expect(reply.epoch).to.not.equal(before.epoch);
      expect(client.channelPosition(channel)).to.deep.equal({ offset: reply.offset, epoch: reply.epoch });

      // Positive control: the next event, in the new epoch, is applied; 2 and 3 never were.
      await publish(channel, post.id, 4);
      await until(() => seen.likes().includes(4), 'the event after the reset');
      expect(seen.likes()).to.deep.equal([1, 4]);
      expect(client.channelPosition(channel)).to.deep.equal({ offset: (reply.offset as number) + 1, epoch: reply.epoch });
    });

    it('(c) applies an event once when the replay overlaps what it had and repeats itself', async () => {
      const { post, channel } = await postChannel();
      const user = await fixtures.user();
      const gate = new Gate();
      const { client, wire } = makeClient(user.id, { gate });
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the first subscribe');
      await publish(channel, post.id, 1, 3);
      await until(() => seen.likes().length === 3, 'three events');
      const applied = wire.received.filter((e) => e.frame.type === 'post_liked' && e.frame.channel === channel).map((e) => e.frame);

      gate.close();
      wire.cut();
      await until(() => client.getSnapshot().state === 'reconnecting', 'reconnecting');
      await publish(channel, post.id, 4, 6);
      // The server replays 4–6; the wire makes it overlap: 2 and 3 again right after the
      // `subscribed` (under other ids, so that only their offsets tell), and every push twice.
      wire.tamper = (frame, deliver) => {
        deliver(frame);
        if (frame.type === 'subscribed' && frame.channel === channel) for (const old of applied.slice(1)) deliver({ ...old, id: `copy-${String(old.id)}` });
        if (frame.type === 'post_liked') deliver(frame);
      };
      gate.open();
      await until(() => seen.confirmations.length === 2, 'the resubscribe');
      expect(seen.confirmations[1]).to.include({ recovered: true });

      await publish(channel, post.id, 7);
      await until(() => seen.likes().includes(7), 'the live event');
      const copies = wire.received.filter((e) => e.frame.type === 'post_liked' && e.frame.channel === channel).length;
      expect(copies, 'each event reached the socket once').to.equal(7);
      expect(seen.likes()).to.deep.equal(range(1, 7));
    });

    it('(c) applies once an event a publisher sent twice (the same id at two offsets)', async () => {
      const { post, channel } = await postChannel();
      const { client } = makeClient((await fixtures.user()).id);
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the subscribe');
      const send = async (likesCount: number, id: string) => {
        const response = await fetch(`${server.httpUrl}/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel, type: 'post_liked', id, data: { postId: post.id, userId: 'u', likesCount } }),
        });
        expect(response.status).to.equal(202);
        return (await response.json()) as { offset: number };
      };
      const first = await send(1, `retry-${post.id}`);
      const again = await send(1, `retry-${post.id}`);
      expect(again.offset, 'a second offset').to.equal(first.offset + 1);
      await send(2, `next-${post.id}`);
      await until(() => seen.likes().includes(2), 'the next event');
      expect(seen.likes()).to.deep.equal([1, 2]);
      // The copy still took its place in the order: the next event was not taken for a gap.
      expect(client.channelPosition(channel)!.offset).to.equal(first.offset + 2);
    });

    it('(c) drops a snapshot older than the applied position, and takes one that is not', async () => {
      const user = await fixtures.user();
      const channel = channelName.notifications(user.id);
      const { client, wire } = makeClient(user.id);
      const seen = record(client, channel);
      client.start();
      await until(() => seen.events.some((f) => f.type === 'unread_notifications'), 'the first snapshot');
      for (let n = 0; n < 2; n++) await publishWithHistory(redis, prefix, channel, JSON.stringify({ type: 'notifications_cleared', data: { unreadCount: 0 } }));
      await until(() => seen.events.filter((f) => f.type === 'notifications_cleared').length === 2, 'two events');
      const { offset, epoch } = client.channelPosition(channel)!;
      // A snapshot of the state at offset−1 (before the last event), then one at the offset.
      const snapshot = (at: number, count: number) => ({
        type: 'unread_notifications',
        channel,
        id: `snapshot:${epoch}:${at}`,
        ts: Date.now(),
        offset: at,
        epoch,
        data: { notifications: [], count },
      });
      wire.inject(snapshot(offset - 1, 41));
      wire.inject(snapshot(offset, 42));
      await until(() => seen.events.some((f) => f.type === 'unread_notifications' && (f.data as { count: number }).count === 42), 'the current snapshot');
      const counts = seen.events.filter((f) => f.type === 'unread_notifications').map((f) => (f.data as { count: number }).count);
      expect(counts.slice(1)).to.deep.equal([42]);
      expect(client.channelPosition(channel)).to.deep.equal({ offset, epoch });
    });

    it('(d) a gap within the epoch: resubscribes with since and the missing events arrive in order', async () => {
      const { post, channel } = await postChannel();
      const { client, wire, logs } = makeClient((await fixtures.user()).id);
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the subscribe');
      await publish(channel, post.id, 1);
      await until(() => seen.likes().length === 1, 'the first event');
      const start = client.channelPosition(channel)!;

      // The push of offset start+2 is lost on its way, once.
      let dropped = false;
      wire.tamper = (frame, deliver) => {
        if (!dropped && frame.type === 'post_liked' && offsetOf(frame) === start.offset + 2) dropped = true;
        else deliver(frame);
      };
      await publish(channel, post.id, 2, 6);
      await until(() => seen.likes().includes(6), 'the last event');
      expect(dropped).to.equal(true);
      expect(seen.likes()).to.deep.equal(range(1, 6));
      expect(seen.offsets()).to.deep.equal(range(start.offset, start.offset + 5));
      expect(logs).to.include('a gap in the channel’s offsets; resubscribing with since');
      const unsubscribe = wire.sentOf('unsubscribe', channel);
      const subscribes = wire.sentOf('subscribe', channel);
      expect(unsubscribe).to.have.length(1);
      expect(subscribes).to.have.length(2);
      expect(subscribes[1]!.frame.since).to.deep.equal({ offset: start.offset + 1, epoch: start.epoch });
      expect(wire.sent.indexOf(unsubscribe[0]!)).to.be.lessThan(wire.sent.indexOf(subscribes[1]!));
      expect(seen.confirmations.slice(1)).to.deep.equal([{ resubscribed: true, wasRecovering: true, recovered: true }]);
    });

    it('(d) a new epoch that does not start at 1 is a gap from the epoch’s start', async () => {
      const { post, channel } = await postChannel();
      const { client, wire } = makeClient((await fixtures.user()).id);
      const seen = record(client, channel);
      client.start();
      await until(() => seen.confirmations.length === 1, 'the subscribe');
      await publish(channel, post.id, 1);
      await until(() => seen.likes().length === 1, 'the first event');
      const old = client.channelPosition(channel)!;

      // The history is lost (a Redis restart without persistence): the next events start a new
      // epoch at offset 1. Its first push is lost on the way.
      const keys = historyKeys(prefix, channel);
      await redis.del(keys.meta, keys.stream);
      let dropped = false;
      wire.tamper = (frame, deliver) => {
        if (!dropped && frame.type === 'post_liked' && offsetOf(frame) === 1) dropped = true;
        else deliver(frame);
      };
      await publish(channel, post.id, 2, 3);
      await until(() => seen.likes().includes(3), 'the new epoch’s second event');
      expect(dropped).to.equal(true);
      expect(seen.likes()).to.deep.equal([1, 2, 3]);
      const position = client.channelPosition(channel)!;
      expect(position.epoch).to.not.equal(old.epoch);
      expect(position.offset).to.equal(2);
      expect(wire.sentOf('subscribe', channel).at(-1)!.frame.since).to.deep.equal({ offset: 0, epoch: position.epoch });
    });

    it('(e) the server’s resubscribe reason: subscribes again at once, with since', async () => {
      // A node of its own, whose Redis connections go through a proxy the test can cut.
      const { proxy, url } = await TcpProxy.forUrl(testRedisUrl());
      const node = await startServer({ env: { REDIS_URL: url } });
      try {
        const { post, channel } = await postChannel();
        const { client, wire } = makeClient((await fixtures.user()).id, { url: () => node.url });
        const seen = record(client, channel);
        client.start();
        await until(() => seen.confirmations.length === 1, 'the subscribe');
        await publish(channel, post.id, 1);
        await until(() => seen.likes().length === 1, 'the first event');
        const before = client.channelPosition(channel)!;

        // The node's Redis link stalls and breaks: what is published meanwhile never reaches it,
        // and the history that would fill the hole is gone too, so the node cannot continue.
        proxy.pause();
        await publish(channel, post.id, 2, 3);
        proxy.dropConnections();
        await redis.del(historyKeys(prefix, channel).stream);
        proxy.resume();

        await until(() => wire.receivedOf('unsubscribed', channel).length === 1, 'the server’s unsubscribed', 15_000);
        const told = wire.receivedOf('unsubscribed', channel)[0]!;
        expect(told.frame).to.include({ reason: 'resubscribe' });
        await until(() => seen.confirmations.length === 2, 'the resubscribe');
        const again = wire.sentOf('subscribe', channel)[1]!;
        expect(again.frame.since).to.deep.equal(before);
        expect(again.at - told.at, 'at once, no backoff').to.be.below(100);
        expect(wire.sentOf('unsubscribe', channel), 'the server already dropped it').to.deep.equal([]);
        expect(seen.confirmations[1]).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: false });
        expect(client.channelStatus(channel)).to.deep.equal({ status: 'subscribed' });

        // Positive control: live events flow again on the same socket.
        await publish(channel, post.id, 4);
        await until(() => seen.likes().includes(4), 'the next event');
        expect(seen.likes()).to.deep.equal([1, 4]);
        expect(wire.sockets).to.have.length(1);
      } finally {
        await node.stop();
        await proxy.close();
      }
    });

    it('(f) notifications_: a failed recovery brings notifications_recovered, which the bell’s state merges', async () => {
      const user = await fixtures.user();
      const channel = channelName.notifications(user.id);
      const first = await fixtures.notification(user.id, { title: 'before' });
      const gate = new Gate();
      const { client, wire } = makeClient(user.id, { gate });
      let state = initialNotificationsState;
      const seen = record(client, channel, {
        onEvent: (frame) => {
          const action = notificationsActionFor(frame);
          if (action) state = notificationsReducer(state, action);
        },
        lastNotificationId: () => newestNotificationId(state),
      });
      client.start();
      await until(() => state.items.length === 1, 'the unread snapshot');
      expect(state).to.include({ unreadCount: 1 });
      expect(state.items[0]!.id).to.equal(first.id);

      gate.close();
      wire.cut();
      await until(() => client.getSnapshot().state === 'reconnecting', 'reconnecting');
      // Stored while the socket was away, and the channel's history lost.
      await new Promise((resolve) => setTimeout(resolve, 10)); // a later createdAt than `first`
      const missed = [await fixtures.notification(user.id, { title: 'missed 1' }), await fixtures.notification(user.id, { title: 'missed 2', isRead: true })];
      const keys = historyKeys(prefix, channel);
      await redis.del(keys.meta, keys.stream);
      gate.open();

      await until(() => seen.confirmations.length === 2, 'the resubscribe');
      expect(seen.confirmations[1]).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: false });
      const resubscribe = wire.sentOf('subscribe', channel).at(-1)!.frame;
      expect(resubscribe).to.include({ lastNotificationId: first.id });
      expect(resubscribe.since).to.be.an('object');
      await until(() => state.items.length === 3, 'the recovered notifications');
      expect(state.items.map((n) => n.id)).to.deep.equal([missed[1]!.id, missed[0]!.id, first.id]);
      expect(state.unreadCount).to.equal(2);
      expect(wire.receivedOf('unread_notifications', channel), 'one snapshot: the first subscribe’s').to.have.length(1);
      const reply = wire.receivedOf('subscribed', channel).at(-1)!.frame;
      expect(state.position).to.deep.equal({ offset: reply.offset, epoch: reply.epoch });
    });

    it('continues from a page’s position (useChannel since): what was published before the subscribe is replayed', async () => {
      const { post, channel } = await postChannel();
      await publish(channel, post.id, 1);
      // The page renders: the position first, then the database.
      const { position: rendered } = await readHistory(redis, prefix, channel, null, 0);
      await publish(channel, post.id, 2, 3);
      const { client, wire } = makeClient((await fixtures.user()).id);
      const seen = record(client, channel, { since: rendered });
      client.start();
      await until(() => seen.likes().includes(3), 'the events after the page');
      expect(wire.sentOf('subscribe', channel)[0]!.frame.since).to.deep.equal(rendered);
      expect(seen.confirmations).to.deep.equal([{ resubscribed: false, wasRecovering: true, recovered: true }]);
      expect(seen.likes()).to.deep.equal([2, 3]);

      // A second component joins the live channel: one whose page is as new as the channel
      // continues; one whose page is older and missed what was applied before it came.
      const current = client.channelPosition(channel)!;
      const upToDate = record(client, channel, { since: current });
      const behind = record(client, channel, { since: rendered });
      const plain = record(client, channel);
      await until(() => upToDate.confirmations.length === 1 && behind.confirmations.length === 1 && plain.confirmations.length === 1, 'the joins');
      expect(upToDate.confirmations[0]).to.deep.equal({ resubscribed: false, wasRecovering: true, recovered: true });
      expect(behind.confirmations[0]).to.deep.equal({ resubscribed: false, wasRecovering: true, recovered: false });
      expect(plain.confirmations[0]).to.deep.equal({ resubscribed: false, wasRecovering: false, recovered: undefined });
      expect(wire.sentOf('subscribe', channel), 'one subscribe for all').to.have.length(1);
    });
  });
});
