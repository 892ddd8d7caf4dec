import { expect } from 'chai';
import { CLOSE_CODES } from '../../src/protocol/index.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

describe('RealtimeServer › client frames', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let userId: string;
  let token: string;
  let client: TestClient;

  before(async () => {
    fixtures = new Fixtures();
    userId = (await fixtures.user()).id;
    token = await mintSessionToken(userId);
    server = await startServer({
      broker: 'memory',
      env: { MAX_PAYLOAD_BYTES: '1024', MAX_SUBSCRIPTIONS_PER_CONNECTION: '3', CLIENT_FRAMES_PER_SECOND: '20', CLIENT_FRAME_BURST: '40' },
    });
  });
  after(async () => {
    await server?.stop();
    await fixtures?.close();
  });
  beforeEach(async () => {
    client = await TestClient.connect(server.url, { token });
  });
  afterEach(() => client?.close());

  it('answers ping with pong, echoing the id and giving the server time', async () => {
    const before = Date.now();
    const reply = await client.request({ type: 'ping' });
    expect(reply.type).to.equal('pong');
    expect(reply.ts).to.be.a('number').within(before - 1000, Date.now() + 1000);
  });

  it('echoes string ids too', async () => {
    client.sendRaw(JSON.stringify({ type: 'ping', id: 'abc' }));
    expect(await client.next((f) => f.type === 'pong')).to.include({ id: 'abc' });
  });

  it('answers a frame that is not JSON with bad_request and keeps the connection', async () => {
    client.sendRaw('{not json');
    const error = await client.next((f) => f.type === 'error');
    expect(error).to.include({ code: 'bad_request' });
    expect((await client.request({ type: 'ping' })).type).to.equal('pong');
  });

  it('answers JSON that is not an object with bad_request', async () => {
    client.sendRaw('[1,2,3]');
    expect(await client.next((f) => f.type === 'error')).to.include({ code: 'bad_request', message: 'frame must be a JSON object' });
  });

  it('answers an unknown frame type with bad_request, echoing its id', async () => {
    const reply = await client.request({ type: 'launch_rockets' });
    expect(reply).to.include({ type: 'error', code: 'bad_request' });
    expect(reply.message).to.match(/unknown frame type/);
  });

  it('answers a subscribe without a channel with bad_request', async () => {
    const reply = await client.request({ type: 'subscribe' });
    expect(reply).to.include({ type: 'error', code: 'bad_request' });
  });

  it('answers unknown fields with bad_request (frames are strict)', async () => {
    const reply = await client.request({ type: 'ping', extra: true });
    expect(reply).to.include({ type: 'error', code: 'bad_request' });
  });

  it('answers a binary frame with bad_request', async () => {
    client.sendRaw(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
    expect(await client.next((f) => f.type === 'error')).to.include({ code: 'bad_request' });
  });

  it('answers an unsubscribe of a channel not held with not_subscribed', async () => {
    expect(await client.request({ type: 'unsubscribe', channel: `feed_${userId}` })).to.include({ code: 'not_subscribed' });
  });

  it('subscribes and unsubscribes, idempotently', async () => {
    expect(await client.subscribe(`feed_${userId}`)).to.include({ type: 'subscribed', channel: `feed_${userId}` });
    expect(await client.subscribe(`feed_${userId}`)).to.include({ type: 'subscribed' });
    expect(await client.request({ type: 'unsubscribe', channel: `feed_${userId}` })).to.include({ type: 'unsubscribed' });
  });

  it('caps subscriptions per connection', async () => {
    const creators = await Promise.all([fixtures.creator(), fixtures.creator(), fixtures.creator(), fixtures.creator()]);
    for (const creator of creators.slice(0, 3)) await client.mustSubscribe(`creator_${creator.id}`);
    const reply = await client.subscribe(`creator_${creators[3]!.id}`);
    expect(reply).to.include({ type: 'error', code: 'too_many_subscriptions' });
  });

  it('closes with 1009 on a frame above maxPayload, without affecting other users', async () => {
    const bystander = await TestClient.connect(server.url, { token });
    client.sendRaw(JSON.stringify({ type: 'ping', id: 'x'.repeat(2000) }));
    expect((await client.closed).code).to.equal(CLOSE_CODES.messageTooBig);
    expect((await bystander.request({ type: 'ping' })).type).to.equal('pong');
    bystander.close();
  });

  it('closes with 4029 a client that floods frames, without affecting other users', async () => {
    const bystander = await TestClient.connect(server.url, { token });
    for (let i = 0; i < 200; i++) client.sendRaw('{"type":"ping"}');
    expect((await client.closed).code).to.equal(CLOSE_CODES.rateLimited);
    expect((await bystander.request({ type: 'ping' })).type).to.equal('pong');
    bystander.close();
  });

  it('survives a storm of malformed frames from many clients', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(server.url, { token })));
    const garbage = ['', 'null', '42', '"s"', '{}', '{"type":null}', '{"type":"subscribe","channel":5}', '\u0000\u0001', '{"type":"subscribe","channel":"' + 'a'.repeat(500) + '"}'];
    for (const c of clients) for (const g of garbage) c.sendRaw(g);
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'error' && f.message === 'frame is not valid JSON')));
    for (const c of clients) expect((await c.request({ type: 'ping' })).type).to.equal('pong');
    for (const c of clients) c.close();
    const health = await fetch(`${server.httpUrl}/health`);
    expect(health.status).to.equal(200);
  });
});

describe('RealtimeServer › client frame rate, sustained', () => {
  // A small burst, so that only the sustained rate can keep a client alive for long: at 90 % of
  // CLIENT_FRAMES_PER_SECOND for 4 s a client sends six times CLIENT_FRAME_BURST frames.
  const RATE = 5;
  const BURST = 3;
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  let server: ServerProcess;
  let fixtures: Fixtures;
  let token: string;
  const clients: TestClient[] = [];

  before(async () => {
    fixtures = new Fixtures();
    token = await mintSessionToken((await fixtures.user()).id);
    server = await startServer({ broker: 'memory', env: { CLIENT_FRAMES_PER_SECOND: String(RATE), CLIENT_FRAME_BURST: String(BURST) } });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
    await fixtures?.close();
  });

  it('keeps a client that sends just below the sustained rate for seconds, far past its burst', async function () {
    this.timeout(20_000);
    const client = await TestClient.connect(server.url, { token });
    clients.push(client);
    const intervalMs = 1000 / (RATE * 0.9);
    const frames = Math.ceil(4_000 / intervalMs);
    expect(frames).to.be.at.least(BURST * 5);
    for (let id = 1; id <= frames; id++) {
      client.sendRaw(JSON.stringify({ type: 'ping', id }));
      // Every gap is at least intervalMs (a late timer is not caught up), so the client never
      // goes faster than 90 % of the rate.
      await wait(intervalMs);
    }
    // Every frame was taken and answered, the last one too, and the socket is still open.
    await Promise.race([
      client.next((f) => f.type === 'pong' && f.id === frames),
      client.closed.then((info) => {
        throw new Error(`closed with ${info.code} (${info.reason}) after ${client.frames.filter((f) => f.type === 'pong').length} pongs`);
      }),
    ]);
    expect(client.frames.filter((f) => f.type === 'pong').map((f) => f.id)).to.deep.equal(Array.from({ length: frames }, (_, i) => i + 1));
    expect(client.frames.filter((f) => f.type === 'error')).to.deep.equal([]);
    expect(client.ws.readyState, 'socket state').to.equal(client.ws.OPEN);

    // Control: on this server the burst really is that small: BURST + 2 frames at once are
    // closed with 4029, and the client at the sustained rate is unaffected.
    const flooder = await TestClient.connect(server.url, { token });
    clients.push(flooder);
    for (let i = 0; i < BURST + 2; i++) flooder.sendRaw('{"type":"ping"}');
    expect((await flooder.closed).code).to.equal(CLOSE_CODES.rateLimited);
    expect((await client.request({ type: 'ping' })).type).to.equal('pong');
  });
});
