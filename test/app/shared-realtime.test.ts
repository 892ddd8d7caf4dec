/**
 * One socket per browser, in Node: several SharedRealtimeClients (hooks/realtime/shared/) of one
 * user stand for the tabs of one browser profile, over Node's own BroadcastChannel (the same
 * API as the browser's, delivered between instances of one name) against the real WebSocket
 * server and Redis. Web Locks do not exist in Node: `TabLocks` below grants each name to one
 * holder at a time, in request order, as the browser's LockManager does (the real one is used
 * by test/e2e/one-connection.test.ts in Chromium). What each tab's listeners receive is counted
 * per event, so "exactly once" is checked where components see it.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { RealtimeClient, type ChannelListener, type SubscribedInfo, type WebSocketLike } from '../../hooks/realtime/client.ts';
import { SharedRealtimeClient, type LocksLike } from '../../hooks/realtime/shared/shared-client.ts';
import { publishWithHistory } from '../../websocket-server/src/broker/history-script.ts';
import { channelName, type PushFrame, type StreamPosition } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testRedisPrefix, testRedisUrl } from '../support/env.ts';

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One holder per name at a time, granted in request order; `query` lists the held names. */
class TabLocks implements LocksLike {
  readonly #held = new Set<string>();
  readonly #queues = new Map<string, Array<() => void>>();

  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const grant = () => {
        this.#held.add(name);
        callback()
          .then(resolve, reject)
          .finally(() => {
            this.#held.delete(name);
            this.#queues.get(name)?.shift()?.();
          });
      };
      if (!this.#held.has(name)) return grant();
      const queue = this.#queues.get(name) ?? [];
      this.#queues.set(name, queue);
      queue.push(grant);
      options.signal?.addEventListener('abort', () => {
        const at = queue.indexOf(grant);
        if (at < 0) return;
        queue.splice(at, 1);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      });
    });
  }

  async query(): Promise<{ held: { name: string }[] }> {
    return { held: [...this.#held].map((name) => ({ name })) };
  }
}

/** Holds the leader's token requests while closed (so no socket exists), passes them when open. */
class Gate {
  #open = true;
  #waiters: Array<() => void> = [];
  asked = 0;
  close(): void {
    this.#open = false;
  }
  open(): void {
    this.#open = true;
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
  async pass(): Promise<void> {
    this.asked++;
    if (!this.#open) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

/** What one tab's listener on a channel received: each event's likesCount, and confirmations. */
function record(tab: SharedRealtimeClient, channel: string, since?: StreamPosition) {
  const likes: number[] = [];
  const confirmations: SubscribedInfo[] = [];
  const listener: ChannelListener = {
    since: since ?? null,
    onEvent(frame: PushFrame) {
      if (frame.type === 'post_liked') likes.push(frame.data.likesCount);
    },
    onSubscribed(info) {
      confirmations.push(info);
    },
  };
  const off = tab.subscribe(channel, listener);
  return { likes, confirmations, off };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SharedRealtimeClient: the tabs of one browser share one socket', function () {
  this.timeout(30_000);
  let server: ServerProcess;
  let fixtures: Fixtures;
  let redis: Redis;
  let prefix: string;
  const tabs: SharedRealtimeClient[] = [];
  /** Every real socket any tab's hub opened, by user. */
  const sockets: Record<string, WebSocket[]> = {};

  before(async () => {
    prefix = testRedisPrefix('ws:');
    fixtures = new Fixtures();
    redis = new Redis(testRedisUrl());
    server = await startServer();
  });
  afterEach(() => {
    for (const tab of tabs.splice(0)) tab.stop();
  });
  after(async () => {
    await server?.stop();
    redis?.disconnect();
    await fixtures?.close();
  });

  /** A tab of `userId`'s browser (`locks` is the browser's; tabs of one browser share it). */
  function openTab(userId: string, locks: TabLocks, gate?: Gate): SharedRealtimeClient {
    const tab = new SharedRealtimeClient({
      userId,
      locks,
      location: { protocol: 'http:', host: '127.0.0.1' },
      createUpstream: () =>
        new RealtimeClient({
          endpoint: async () => {
            await gate?.pass();
            return { url: server.url, token: await mintSessionToken(userId), expiresAt: null };
          },
          createSocket: (url, protocols) => {
            const ws = new WebSocket(url, protocols);
            ws.on('error', () => {});
            (sockets[userId] ??= []).push(ws);
            return ws as unknown as WebSocketLike;
          },
          location: { protocol: 'http:', host: '127.0.0.1' },
          backoff: { baseMs: 20, capMs: 100 },
        }),
    });
    tabs.push(tab);
    tab.start();
    return tab;
  }

  async function postChannel() {
    const post = await fixtures.post((await fixtures.creator()).id);
    const channel = channelName.post(post.id);
    const publish = async (from: number, to = from) => {
      for (let n = from; n <= to; n++) {
        await publishWithHistory(redis, prefix, channel, JSON.stringify({ type: 'post_liked', data: { postId: post.id, userId: 'u', likesCount: n } }));
      }
    };
    return { channel, publish };
  }

  const openSockets = (userId: string) => (sockets[userId] ?? []).filter((ws) => ws.readyState === WebSocket.OPEN).length;

  it('three tabs: one socket; every event reaches each tab’s listener once, in order', async () => {
    const user = await fixtures.user();
    const locks = new TabLocks();
    const { channel, publish } = await postChannel();
    const three = [openTab(user.id, locks), openTab(user.id, locks), openTab(user.id, locks)];
    const seen = three.map((tab) => record(tab, channel));
    await until(() => seen.every((s) => s.confirmations.length === 1), 'three confirmations');
    expect(three.map((t) => t.leading)).to.deep.equal([true, false, false]);
    expect(three.map((t) => t.getSnapshot().state)).to.deep.equal(['open', 'open', 'open']);
    // Malformed posts on the user's channel (another script of the origin) change nothing.
    const stranger = new BroadcastChannel(`fonana-realtime:${user.id}`);
    for (const junk of [null, 'x', { kind: 'frame', tab: 't', hub: 'h', frame: null }, { kind: 'deliver', hub: 1, to: 2, frames: 'x' }, { kind: 'welcome', to: 'x' }, { kind: 'attach', tab: {} }]) {
      stranger.postMessage(junk);
    }
    stranger.close();
    await publish(1, 10);
    await until(() => seen.every((s) => s.likes.length >= 10), 'ten events in every tab');
    for (const s of seen) expect(s.likes).to.deep.equal(range(1, 10));
    expect(sockets[user.id]).to.have.length(1);
    expect(openSockets(user.id)).to.equal(1);
  });

  it('a tab joining a live channel with since inside the hub’s log gets the events after it, recovered: true', async () => {
    const user = await fixtures.user();
    const locks = new TabLocks();
    const { channel, publish } = await postChannel();
    const first = openTab(user.id, locks);
    const a = record(first, channel);
    await until(() => a.confirmations.length === 1, 'the first tab');
    await publish(1, 3);
    await until(() => a.likes.length === 3, 'three events');
    const at3 = first.channelPosition(channel)!;
    await publish(4, 6);
    await until(() => a.likes.length === 6, 'six events');
    const late = openTab(user.id, locks);
    const b = record(late, channel, at3);
    await until(() => b.likes.length === 3, 'the three after its position');
    expect(b.likes).to.deep.equal([4, 5, 6]);
    expect(b.confirmations).to.deep.equal([{ resubscribed: false, wasRecovering: true, recovered: true }]);
    // A position of another epoch is not in the log: the tab must reload.
    const third = openTab(user.id, locks);
    const c = record(third, channel, { offset: 2, epoch: 'another-epoch' });
    await until(() => c.confirmations.length === 1, 'the third tab');
    expect(c.confirmations[0]).to.include({ recovered: false });
    expect(c.likes).to.deep.equal([]);
    expect(sockets[user.id]).to.have.length(1);
  });

  it('the leader closes while no socket exists: the next tab connects, every tab gets what was published meanwhile once', async () => {
    const user = await fixtures.user();
    const locks = new TabLocks();
    const gate = new Gate();
    const { channel, publish } = await postChannel();
    const [leader, b, c] = [openTab(user.id, locks, gate), openTab(user.id, locks, gate), openTab(user.id, locks, gate)];
    const seenB = record(b, channel);
    const seenC = record(c, channel);
    await until(() => seenB.confirmations.length === 1 && seenC.confirmations.length === 1, 'both followers');
    await publish(1, 4);
    await until(() => seenB.likes.length === 4 && seenC.likes.length === 4, 'four events');
    const at4 = b.channelPosition(channel)!;
    expect(leader.leading).to.equal(true);

    gate.close();
    const asked = gate.asked;
    leader.stop();
    await until(() => gate.asked > asked, 'the next leader asks for a token');
    await until(() => openSockets(user.id) === 0, 'no socket of this user');
    await publish(5, 12);
    gate.open();
    await until(() => seenB.likes.length === 12 && seenC.likes.length === 12, 'the twelve events in both tabs');
    await publish(13);
    await until(() => seenB.likes.includes(13) && seenC.likes.includes(13), 'a live event after the replay');
    expect(seenB.likes).to.deep.equal(range(1, 13));
    expect(seenC.likes).to.deep.equal(range(1, 13));
    expect(seenB.confirmations.at(-1)).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: true });
    expect(seenC.confirmations.at(-1)).to.deep.equal({ resubscribed: true, wasRecovering: true, recovered: true });
    expect([b.leading, c.leading].filter(Boolean)).to.have.length(1);
    expect(openSockets(user.id)).to.equal(1);
    expect(b.channelPosition(channel)).to.deep.equal({ offset: at4.offset + 9, epoch: at4.epoch });
  });

  it('tabs with different positions at the handover are all covered: the new hub continues from the oldest', async () => {
    const user = await fixtures.user();
    const locks = new TabLocks();
    const gate = new Gate();
    const { channel, publish } = await postChannel();
    const leader = openTab(user.id, locks, gate);
    const onLeader = record(leader, channel);
    await until(() => onLeader.confirmations.length === 1, 'the leader');
    await publish(1, 5);
    await until(() => onLeader.likes.length === 5, 'five events');
    const at2 = leader.channelPosition(channel)!;
    const at2Position = { offset: at2.offset - 3, epoch: at2.epoch };
    // B joins at event 5; C joins from event 2 (in the hub's log: recovered, 3..5 replayed).
    const b = openTab(user.id, locks, gate);
    const seenB = record(b, channel);
    await until(() => seenB.confirmations.length === 1, 'B');
    const c = openTab(user.id, locks, gate);
    const seenC = record(c, channel, at2Position);
    await until(() => seenC.likes.length === 3, 'C replayed from the log');

    // C's channel falls behind B's for real: C unsubscribes and comes back from event 2 only
    // once the old hub is gone, so the new hub sees B at 5 and C at 2.
    seenC.off();
    await new Promise((r) => setTimeout(r, 1_700));
    gate.close();
    leader.stop();
    const seenC2 = record(c, channel, at2Position);
    await until(() => openSockets(user.id) === 0, 'no socket of this user');
    await publish(6, 8);
    gate.open();
    // B joined at event 5 (no since): it has 6..8, and none of the replayed 3..5 twice.
    await until(() => seenB.likes.length === 3 && seenC2.likes.length === 6, 'B: 6..8, C: 3..8').catch((error: Error) => {
      throw new Error(`${error.message}; B ${JSON.stringify(seenB)}, C ${JSON.stringify(seenC2)}`);
    });
    await publish(9);
    await until(() => seenB.likes.includes(9) && seenC2.likes.includes(9), 'a live event after the replay');
    expect(seenB.likes).to.deep.equal(range(6, 9));
    expect(seenC2.likes).to.deep.equal(range(3, 9));
    expect(seenC2.confirmations.at(-1)).to.include({ recovered: true });
    expect(seenB.confirmations.at(-1)).to.include({ recovered: true });
  });

  it('another user’s tabs have their own socket and hear none of this user’s channels', async () => {
    const alice = await fixtures.user();
    const bob = await fixtures.user();
    const locks = new TabLocks();
    const { channel, publish } = await postChannel();
    const aliceTabs = [openTab(alice.id, locks), openTab(alice.id, locks)];
    const bobTab = openTab(bob.id, locks);
    const seen = aliceTabs.map((t) => record(t, channel));
    await until(() => seen.every((s) => s.confirmations.length === 1) && bobTab.getSnapshot().state === 'open', 'both users');
    expect(bobTab.leading).to.equal(true);
    expect(openSockets(alice.id)).to.equal(1);
    expect(openSockets(bob.id)).to.equal(1);
    await publish(1);
    await until(() => seen.every((s) => s.likes.length === 1), 'alice’s tabs');
    // Bob's tab never asked for the channel, and its hub holds no channel: nothing of it there.
    expect(bobTab.channelStatus(channel)).to.deep.equal({ status: 'pending' });
  });
});
