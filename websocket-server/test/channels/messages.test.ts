/**
 * `messages_{userId}` against the running server: its owner only, like notifications_. The
 * allowed case also proves the channel delivers (a published `message` arrives), so the
 * refusal below is not just a channel that never works.
 */
import { expect } from 'chai';
import { channelName } from '../../src/protocol/index.ts';
import { TEST_PUBLISH_SECRET } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

describe('Channel › messages_ (real server)', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  const clients: TestClient[] = [];
  let owner: { id: string };
  let other: { id: string };

  before(async () => {
    fixtures = new Fixtures();
    server = await startServer();
    owner = await fixtures.user({ name: 'owner' });
    other = await fixtures.creator('other');
  });
  after(async () => {
    for (const client of clients) client.close();
    await server?.stop();
    await fixtures?.close();
  });

  const connect = async (user: { id: string }) => {
    const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
    clients.push(client);
    return client;
  };

  it('lets the owner subscribe to their own channel, which delivers message events', async () => {
    const client = await connect(owner);
    const reply = await client.subscribe(channelName.messages(owner.id));
    expect(reply).to.include({ type: 'subscribed', channel: `messages_${owner.id}` });
    const message = {
      id: 'm1',
      conversationId: 'c1',
      senderId: other.id,
      senderName: 'Other',
      recipientId: owner.id,
      body: 'hello',
      createdAt: new Date().toISOString(),
      readAt: null,
    };
    const response = await fetch(`${server.httpUrl}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: channelName.messages(owner.id), type: 'message', data: { message } }),
    });
    expect(response.status).to.equal(202);
    const push = await client.next((f) => f.type === 'message');
    expect(push.data).to.deep.equal({ message });
    // Kept in history, like notifications: the push has a position.
    expect(push.offset).to.equal(1);
  });

  it('refuses another user’s messages_ channel with forbidden, and the connection stays usable', async () => {
    const client = await connect(owner);
    const reply = await client.subscribe(channelName.messages(other.id));
    expect(reply).to.include({ type: 'error', code: 'forbidden', channel: `messages_${other.id}` });
    expect(reply.message).to.be.a('string').and.not.empty;
    expect((await client.request({ type: 'ping' })).type).to.equal('pong');
  });

  it('refuses a malformed messages_ name as invalid_channel', async () => {
    const client = await connect(owner);
    expect(await client.subscribe('messages_')).to.include({ type: 'error', code: 'invalid_channel' });
  });
});
