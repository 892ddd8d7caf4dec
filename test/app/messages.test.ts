/**
 * Direct messages over HTTP against the real app (`next start` of the e2e build), with the
 * WebSocket server and an outbox relay (publishing through its POST /publish, the
 * single-machine default) as child processes, and protocol-level clients on both participants'
 * `messages_` channels to see what each send publishes where.
 *
 * The rule: a user and a creator they actively subscribe to may write to each other, both ways;
 * anyone else gets 403.
 */
import { expect } from 'chai';
import { createPrismaClient, type PrismaClient } from '../../lib/db/prisma-client.ts';
import { TestClient, type Frame } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { channelName, MAX_MESSAGE_LENGTH } from '../../websocket-server/src/protocol/index.ts';
import { testDatabaseUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';
import { startRelay, type RelayProcess } from './support/outbox-relay.ts';

type Json = Record<string, unknown>;
type Who = 'creator' | 'fan' | 'stranger' | 'lapsed' | 'otherCreator';

describe('Direct messages API (HTTP against the running app)', function () {
  this.timeout(30_000);

  let prisma: PrismaClient;
  let fixtures: Fixtures;
  let ws: ServerProcess;
  let relay: RelayProcess;
  let app: AppProcess;
  const clients: TestClient[] = [];
  const users = {} as Record<Who, { id: string; name: string }>;
  const cookies = {} as Record<Who, string>;

  async function call(method: string, path: string, who?: Who, body?: unknown): Promise<{ status: number; json: Json }> {
    const headers: Record<string, string> = {};
    if (who) headers.cookie = `next-auth.session-token=${cookies[who]}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${app.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Json };
  }

  async function inbox(who: Who): Promise<TestClient> {
    const client = await TestClient.connect(ws.url, { token: await mintSessionToken(users[who].id) });
    clients.push(client);
    await client.mustSubscribe(channelName.messages(users[who].id));
    return client;
  }

  const messagesOn = (client: TestClient, who: Who) => client.pushes(channelName.messages(users[who].id)).filter((f) => f.type === 'message');
  const bodyOf = (frame: Frame) => ((frame.data as { message: Json }).message.body as string);

  before(async function () {
    this.timeout(240_000);
    await ensureAppBuilt();
    prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 2 });
    fixtures = new Fixtures();
    users.creator = await fixtures.creator('Creator');
    users.otherCreator = await fixtures.creator('Other creator');
    users.fan = await fixtures.user({ name: 'Fan' });
    users.stranger = await fixtures.user({ name: 'Stranger' });
    users.lapsed = await fixtures.user({ name: 'Lapsed' });
    await fixtures.subscription(users.fan.id, users.creator.id, { tier: 'BASIC' });
    await fixtures.subscription(users.lapsed.id, users.creator.id, { tier: 'VIP', expiresAt: new Date(Date.now() - 60_000) });
    for (const who of Object.keys(users) as Who[]) {
      cookies[who] = await mintSessionToken(users[who].id, { claims: { name: users[who].name } });
    }
    ws = await startServer({ broker: 'memory' });
    const publisher = { REDIS_URL: '', WS_PUBLISH_URL: ws.httpUrl, WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET };
    app = await startApp({ DATABASE_URL: testDatabaseUrl(), DATABASE_POOL_MAX: '3', NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET, ...publisher });
    relay = await startRelay(publisher);
  });

  after(async function () {
    this.timeout(20_000);
    for (const client of clients) client.close();
    await app?.stop();
    await relay?.stop();
    await ws?.stop();
    await fixtures?.close();
    await prisma?.$disconnect();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
      console.log(`      relay log (tail):\n${relay?.log().slice(-3000)}`);
    }
  });

  it('answers 401 to every messages route without a session', async () => {
    for (const [method, path] of [
      ['GET', '/api/messages'],
      ['POST', '/api/messages'],
      ['GET', '/api/messages/x'],
      ['POST', '/api/messages/x/read'],
    ] as const) {
      const { status, json } = await call(method, path, undefined, method === 'POST' ? {} : undefined);
      expect(status, `${method} ${path}`).to.equal(401);
      expect(json.error).to.equal('unauthorized');
    }
  });

  it('a subscriber writes to the creator: 201, one conversation, the message event on both participants’ channels', async () => {
    const creatorInbox = await inbox('creator');
    const fanInbox = await inbox('fan');
    const first = await call('POST', '/api/messages', 'fan', { recipientId: users.creator.id, body: '  Hello there  ' });
    expect(first.status).to.equal(201);
    const message = first.json.message as Json;
    expect(message).to.include({ senderId: users.fan.id, senderName: 'Fan', recipientId: users.creator.id, body: 'Hello there', readAt: null });
    const conversation = first.json.conversation as { id: string; created: boolean };
    expect(conversation.created).to.equal(true);
    expect(message.conversationId).to.equal(conversation.id);

    const atCreator = await creatorInbox.next((f) => f.type === 'message');
    const atFan = await fanInbox.next((f) => f.type === 'message');
    expect(atCreator.data).to.deep.equal({ message });
    expect(atFan.data).to.deep.equal({ message });
    // One event, published to both channels: the same id, each with its channel's position.
    expect(atCreator.id).to.equal(atFan.id);
    expect(atCreator.offset).to.be.a('number');

    const second = await call('POST', '/api/messages', 'fan', { recipientId: users.creator.id, body: 'Second' });
    expect(second.status).to.equal(201);
    expect(second.json.conversation).to.deep.equal({ id: conversation.id, created: false });
    await creatorInbox.next((f) => f.type === 'message' && bodyOf(f) === 'Second');
    expect(await prisma.conversation.count({ where: { OR: [{ userAId: users.fan.id }, { userBId: users.fan.id }] } })).to.equal(1);
  });

  it('a creator writes to their subscriber (the rule holds both ways), into the same conversation', async () => {
    const fanInbox = await inbox('fan');
    const { status, json } = await call('POST', '/api/messages', 'creator', { recipientId: users.fan.id, body: 'Thanks for subscribing!' });
    expect(status).to.equal(201);
    expect((json.conversation as Json).created).to.equal(false);
    const push = await fanInbox.next((f) => f.type === 'message' && bodyOf(f) === 'Thanks for subscribing!');
    expect((push.data as { message: Json }).message).to.include({ senderId: users.creator.id, recipientId: users.fan.id });
  });

  it('answers 403 to a pair the rule does not allow, stores and publishes nothing', async () => {
    const creatorInbox = await inbox('creator');
    const strangerInbox = await inbox('stranger');
    const refused: Array<[Who, Who]> = [
      ['stranger', 'creator'], // no subscription
      ['creator', 'stranger'], // not a subscriber of theirs
      ['lapsed', 'creator'], // the subscription expired
      ['creator', 'lapsed'],
      ['fan', 'otherCreator'], // subscribes to another creator
      ['creator', 'otherCreator'], // two creators, neither subscribes
    ];
    for (const [from, to] of refused) {
      const { status, json } = await call('POST', '/api/messages', from, { recipientId: users[to].id, body: 'let me in' });
      expect(status, `${from} → ${to}`).to.equal(403);
      expect(json.error).to.equal('forbidden');
    }
    expect(await prisma.message.count({ where: { body: 'let me in' } })).to.equal(0);
    expect(await prisma.conversation.count({ where: { OR: [{ userAId: users.stranger.id }, { userBId: users.stranger.id }] } })).to.equal(0);
    // Positive control: an allowed message reaches the creator's channel, and is the only new one.
    const before = messagesOn(creatorInbox, 'creator').length;
    await call('POST', '/api/messages', 'fan', { recipientId: users.creator.id, body: 'control' });
    await creatorInbox.next((f) => f.type === 'message' && bodyOf(f) === 'control');
    expect(messagesOn(creatorInbox, 'creator').slice(before).map(bodyOf)).to.deep.equal(['control']);
    await strangerInbox.request({ type: 'ping' });
    expect(messagesOn(strangerInbox, 'stranger')).to.deep.equal([]);
  });

  it('answers 422 for bad input and 404 for an unknown recipient', async () => {
    const bad: unknown[] = [
      { recipientId: users.creator.id, body: '' },
      { recipientId: users.creator.id, body: '   ' },
      { recipientId: users.creator.id, body: 'x'.repeat(MAX_MESSAGE_LENGTH + 1) },
      { recipientId: users.creator.id, body: 'hi', extra: 1 },
      { recipientId: users.creator.id },
      { body: 'hi' },
      { recipientId: 'bad id!', body: 'hi' },
      { recipientId: users.creator.id, body: 42 },
      'not json',
    ];
    for (const body of bad) {
      const { status, json } = await call('POST', '/api/messages', 'fan', body);
      expect(status, JSON.stringify(body).slice(0, 80)).to.equal(422);
      expect(json.error).to.equal('unprocessable');
    }
    expect((await call('POST', '/api/messages', 'fan', { recipientId: users.fan.id, body: 'me' })).status, 'to oneself').to.equal(422);
    expect((await call('POST', '/api/messages', 'fan', { recipientId: 'no-such-user', body: 'hi' })).status).to.equal(404);
    expect((await call('GET', '/api/messages?limit=0', 'fan')).status).to.equal(422);
    expect((await call('GET', '/api/messages/bad%20id', 'fan')).status).to.equal(422);
    expect((await call('POST', '/api/messages/bad%20id/read', 'fan')).status).to.equal(422);
    // The longest body is accepted.
    expect((await call('POST', '/api/messages', 'fan', { recipientId: users.creator.id, body: 'y'.repeat(MAX_MESSAGE_LENGTH) })).status).to.equal(201);
  });

  it('lists conversations with their last message and unread counts; pages a thread; read marks them', async () => {
    const conversation = await prisma.conversation.findFirstOrThrow({
      where: { OR: [{ userAId: users.fan.id, userBId: users.creator.id }, { userAId: users.creator.id, userBId: users.fan.id }] },
    });
    const fromFan = await prisma.message.count({ where: { conversationId: conversation.id, senderId: users.fan.id } });
    const fromCreator = await prisma.message.count({ where: { conversationId: conversation.id, senderId: users.creator.id } });
    expect(fromFan).to.be.above(2);

    const list = await call('GET', '/api/messages', 'creator');
    expect(list.status).to.equal(200);
    const conversations = list.json.conversations as Json[];
    expect(conversations).to.have.length(1);
    expect(conversations[0]).to.include({ id: conversation.id, unreadCount: fromFan });
    expect(conversations[0]!.otherUser).to.deep.equal({ id: users.fan.id, name: 'Fan', isCreator: false });
    expect((conversations[0]!.lastMessage as Json).body).to.equal('y'.repeat(MAX_MESSAGE_LENGTH));
    expect(list.json.unreadCount).to.equal(fromFan);
    expect(list.json.position).to.have.keys('offset', 'epoch');
    // The fan's side: what the creator sent is unread for them, their own messages are not.
    expect((await call('GET', '/api/messages', 'fan')).json.unreadCount).to.equal(fromCreator);

    // Paged, newest first, the cursor going back in time.
    const page1 = await call('GET', `/api/messages/${conversation.id}?limit=2`, 'creator');
    expect(page1.status).to.equal(200);
    expect(page1.json.conversation).to.deep.include({ id: conversation.id });
    const first = page1.json.messages as Json[];
    expect(first.map((m) => m.body)).to.deep.equal(['y'.repeat(MAX_MESSAGE_LENGTH), 'control']);
    const page2 = await call('GET', `/api/messages/${conversation.id}?limit=2&cursor=${String(page1.json.nextCursor)}`, 'creator');
    expect((page2.json.messages as Json[]).map((m) => m.body)).to.deep.equal(['Thanks for subscribing!', 'Second']);
    const all = await call('GET', `/api/messages/${conversation.id}?limit=100`, 'creator');
    expect(all.json.nextCursor).to.equal(null);
    expect((all.json.messages as Json[]).at(-1)!.body).to.equal('Hello there');
    expect((await call('GET', `/api/messages/${conversation.id}?cursor=no-such-message`, 'creator')).status).to.equal(422);

    // Not a participant: as good as missing.
    expect((await call('GET', `/api/messages/${conversation.id}`, 'stranger')).status).to.equal(404);
    expect((await call('POST', `/api/messages/${conversation.id}/read`, 'stranger')).status).to.equal(404);
    expect((await call('GET', '/api/messages/no-such-conversation', 'creator')).status).to.equal(404);

    const read = await call('POST', `/api/messages/${conversation.id}/read`, 'creator');
    expect(read.status).to.equal(200);
    expect(read.json).to.deep.equal({ conversationId: conversation.id, marked: fromFan, unreadCount: 0 });
    expect(await prisma.message.count({ where: { conversationId: conversation.id, senderId: users.fan.id, readAt: null } })).to.equal(0);
    // The other side's messages stay unread until the fan reads them.
    expect(await prisma.message.count({ where: { conversationId: conversation.id, senderId: users.creator.id, readAt: null } })).to.equal(fromCreator);
    expect(((await call('GET', '/api/messages', 'creator')).json.conversations as Json[])[0]).to.include({ unreadCount: 0 });
    expect((await call('POST', `/api/messages/${conversation.id}/read`, 'creator')).json).to.include({ marked: 0, unreadCount: 0 });
  });

  it('two first messages at once, from both sides, make one conversation', async () => {
    const creator = await fixtures.creator('Race creator');
    const fan = await fixtures.user({ name: 'Race fan' });
    await fixtures.subscription(fan.id, creator.id);
    const cookieOf = async (user: { id: string; name: string }) => `next-auth.session-token=${await mintSessionToken(user.id, { claims: { name: user.name } })}`;
    const send = async (from: typeof fan, to: typeof fan, body: string) =>
      fetch(`${app.url}/api/messages`, {
        method: 'POST',
        headers: { cookie: await cookieOf(from), 'content-type': 'application/json' },
        body: JSON.stringify({ recipientId: to.id, body }),
      }).then(async (r) => ({ status: r.status, json: (await r.json()) as { conversation: { id: string } } }));
    const answers = await Promise.all([send(fan, creator, 'a'), send(creator, fan, 'b'), send(fan, creator, 'c'), send(creator, fan, 'd')]);
    expect(answers.map((a) => a.status)).to.deep.equal([201, 201, 201, 201]);
    expect(new Set(answers.map((a) => a.json.conversation.id)).size).to.equal(1);
    const where = { OR: [{ userAId: fan.id }, { userBId: fan.id }] };
    expect(await prisma.conversation.count({ where })).to.equal(1);
    expect(await prisma.message.count({ where: { conversation: where } })).to.equal(4);
  });

  it('the database keeps one row per pair: the reversed order is refused', async () => {
    const a = await fixtures.user({ name: 'A' });
    const b = await fixtures.user({ name: 'B' });
    const [low, high] = [a.id, b.id].sort() as [string, string];
    await prisma.conversation.create({ data: { userAId: low, userBId: high } });
    let error: unknown;
    await prisma.conversation.create({ data: { userAId: high, userBId: low } }).catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/userAId < userBId/);
    let same: unknown;
    await prisma.conversation.create({ data: { userAId: low, userBId: low } }).catch((e: unknown) => (same = e));
    expect(String(same)).to.match(/userAId < userBId/);
  });
});
