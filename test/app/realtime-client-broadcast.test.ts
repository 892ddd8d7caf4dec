/**
 * RealtimeClient.onBroadcast (hooks/realtime/client.ts) against the real WebSocket server: the
 * browser client hears operator broadcasts without subscribing anything, with the server's id,
 * hands the latest one to a listener added later, and a thrown listener does not stop the others.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { RealtimeClient, type WebSocketLike } from '../../hooks/realtime/client.ts';
import type { BroadcastPayload } from '../../websocket-server/src/protocol/index.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { TEST_PUBLISH_SECRET } from '../support/env.ts';

type Heard = { broadcast: BroadcastPayload; id: string };

describe('RealtimeClient › onBroadcast (real server)', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let client: RealtimeClient;

  before(async () => {
    fixtures = new Fixtures();
    server = await startServer({ broker: 'memory', env: { BROADCAST_RETAIN_MS: '0' } });
    const user = await fixtures.user();
    client = new RealtimeClient({
      endpoint: async () => ({ url: server.url, token: await mintSessionToken(user.id), expiresAt: Date.now() + 300_000 }),
      createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike,
      location: { protocol: 'http:', host: '127.0.0.1' },
    });
  });
  after(async () => {
    client?.stop();
    await server?.stop();
    await fixtures?.close();
  });

  async function publish(message: string, level: BroadcastPayload['level']): Promise<string> {
    const response = await fetch(`${server.httpUrl}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_PUBLISH_SECRET}` },
      body: JSON.stringify({ channel: 'broadcast', type: 'broadcast', data: { message, level } }),
    });
    expect(response.status).to.equal(202);
    return ((await response.json()) as { id: string }).id;
  }

  function listen(into: Heard[]): { remove: () => void; next: (message: string) => Promise<Heard> } {
    const waiters: Array<(heard: Heard) => void> = [];
    const remove = client.onBroadcast((broadcast, meta) => {
      const heard = { broadcast, id: meta.id };
      into.push(heard);
      for (const waiter of waiters.splice(0)) waiter(heard);
    });
    const next = (message: string) =>
      new Promise<Heard>((resolve, reject) => {
        const found = into.find((h) => h.broadcast.message === message);
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no broadcast ${message}; heard ${JSON.stringify(into)}`)), 5_000);
        const check = (heard: Heard) => {
          if (heard.broadcast.message !== message) return void waiters.push(check);
          clearTimeout(timer);
          resolve(heard);
        };
        waiters.push(check);
      });
    return { remove, next };
  }

  it('hears broadcasts with no channel subscribed, with the server id; a later listener gets the latest at once', async () => {
    const first: Heard[] = [];
    const thrower = client.onBroadcast(() => {
      throw new Error('a broken listener');
    });
    const a = listen(first);
    client.start();
    await new Promise<void>((resolve) => {
      const off = client.subscribeState(() => {
        if (client.getSnapshot().state === 'open') {
          off();
          resolve();
        }
      });
    });
    const id = await publish('one', 'info');
    expect(await a.next('one')).to.deep.equal({ broadcast: { message: 'one', level: 'info' }, id });
    const id2 = await publish('two', 'critical');
    await a.next('two');
    expect(first.map((h) => h.id)).to.deep.equal([id, id2]);

    const late: Heard[] = [];
    const b = listen(late);
    expect(late).to.deep.equal([{ broadcast: { message: 'two', level: 'critical' }, id: id2 }]);

    a.remove();
    thrower();
    await publish('three', 'warning');
    await b.next('three');
    expect(first.map((h) => h.broadcast.message)).to.deep.equal(['one', 'two']); // removed: heard no more
    b.remove();
  });
});
