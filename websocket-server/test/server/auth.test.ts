import { expect } from 'chai';
import { encode } from 'next-auth/jwt';
import { CLOSE_CODES } from '../../src/protocol/index.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

describe('RealtimeServer › handshake authentication', () => {
  let server: ServerProcess;
  let fixtures: Fixtures;
  let userId: string;
  let token: string;

  before(async () => {
    fixtures = new Fixtures();
    userId = (await fixtures.user()).id;
    token = await mintSessionToken(userId);
    server = await startServer({ env: { ALLOWED_ORIGINS: 'http://app.test,https://fonana.test' } });
  });
  after(async () => {
    await server?.stop();
    await fixtures?.close();
  });

  /** The first JSON log line written since offset `from` that matches, waiting for it (the log
   * arrives through a pipe, after the socket events that caused it). */
  const logEntry = async (from: number, match: (entry: Record<string, unknown>) => boolean, what: string) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      for (const line of server.log().slice(from).split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (match(entry)) return entry;
        } catch {
          // A line still being written.
        }
      }
      if (Date.now() > deadline) throw new Error(`no log entry for ${what}; log since:\n${server.log().slice(from).slice(-3000)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const expectConnectedAs = async (client: Promise<TestClient>) => {
    const c = await client;
    const frame = await c.next((f) => f.type === 'connected');
    expect(frame).to.include({ type: 'connected', userId });
    expect(frame.connectionId).to.be.a('string').and.not.empty;
    c.close();
  };

  describe('accepted token sources', () => {
    it('Authorization: Bearer header', () => expectConnectedAs(TestClient.connect(server.url, { token, via: 'header' })));
    it('a bearer.<token> subprotocol beside fonana.v1, answered with fonana.v1 only', async () => {
      const client = await TestClient.connect(server.url, { token, via: 'subprotocol' });
      expect(client.ws.protocol).to.equal('fonana.v1');
      await expectConnectedAs(Promise.resolve(client));
    });
    it('?token= query parameter', () => expectConnectedAs(TestClient.connect(server.url, { token, via: 'query' })));
    it('next-auth.session-token cookie', () => expectConnectedAs(TestClient.connect(server.url, { token, via: 'cookie' })));
    it('__Secure-next-auth.session-token cookie', () =>
      expectConnectedAs(TestClient.connect(server.url, { token, via: 'cookie', cookieName: '__Secure-next-auth.session-token' })));
    it('the /ws path as well as /', () => expectConnectedAs(TestClient.connect(server.url, { token, path: '/ws' })));

    it('a chunked cookie (.0, .1, .2) reassembled in numeric order', async () => {
      const third = Math.ceil(token.length / 3);
      const parts = [token.slice(0, third), token.slice(third, 2 * third), token.slice(2 * third)];
      // Out of order and among unrelated cookies, as a browser may send them.
      const cookie = `theme=dark; next-auth.session-token.2=${parts[2]}; next-auth.session-token.0=${parts[0]}; next-auth.session-token.1=${parts[1]}`;
      await expectConnectedAs(TestClient.connect(server.url, { headers: { cookie } }));
    });

    it('an allowed Origin', () => expectConnectedAs(TestClient.connect(server.url, { token, origin: 'https://fonana.test' })));
  });

  describe('refusals close with 4001', () => {
    const expect4001 = async (options: Parameters<typeof TestClient.open>[1]) => {
      const client = TestClient.open(server.url, options);
      const closed = await client.closed;
      expect(closed.code).to.equal(CLOSE_CODES.unauthorized);
      expect(client.frames.filter((f) => f.type === 'connected')).to.be.empty;
    };

    it('no token at all', () => expect4001({}));
    it('a malformed token', () => expect4001({ token: 'not.a.jwe.at.all' }));
    it('garbage that is not even dotted', () => expect4001({ token: 'x'.repeat(300), via: 'query' }));
    it('a token encrypted with another secret', async () =>
      expect4001({ token: await mintSessionToken(userId, { secret: 'some-other-secret' }) }));
    it('an expired token', async () => expect4001({ token: await mintSessionToken(userId, { maxAgeSeconds: -60 }) }));
    it('a token for a user that does not exist', async () => expect4001({ token: await mintSessionToken('cknotauser000000000000000') }));
    it('a token without a subject', async () =>
      expect4001({ token: await encode({ token: { name: 'no sub' }, secret: 'test-nextauth-secret-0123456789abcdef' }) }));
    it('a bad token offered as a subprotocol', () => expect4001({ protocols: ['fonana.v1', 'bearer.not-a-token'] }));
    it('a truncated cookie chunk set', async () =>
      expect4001({ headers: { cookie: `next-auth.session-token.0=${token.slice(0, 100)}` } }));

    it('never writes the token to the log, refused or accepted, whatever carries it', async () => {
      // The exact strings this test submits: a token the server refuses (another secret) and the
      // valid one. For each attempt the log must first show that attempt's own entries, so the
      // check cannot pass on an empty or lagging log, and only then is searched for the token.
      const refused = await mintSessionToken(userId, { secret: 'leak-check-secret' });
      for (const via of ['header', 'subprotocol', 'query', 'cookie'] as const) {
        const from = server.log().length;
        await expect4001({ token: refused, via });
        await logEntry(from, (e) => e.message === 'authentication failed' && e.source === via, `the refusal of a token in the ${via}`);
        expect(server.log().slice(from), `log after a refused token in the ${via}`).to.not.include(refused);

        const acceptedFrom = server.log().length;
        const client = await TestClient.connect(server.url, { token, via });
        const { connectionId } = await client.next((f) => f.type === 'connected');
        await logEntry(acceptedFrom, (e) => e.message === 'connected' && e.connId === connectionId && e.userId === userId, `the connection with a token in the ${via}`);
        client.close();
        await client.closed;
        await logEntry(acceptedFrom, (e) => e.message === 'disconnected' && e.connId === connectionId, `the disconnection of ${via}`);
        expect(server.log().slice(acceptedFrom), `log after an accepted token in the ${via}`).to.not.include(token);
      }
      // Nor anywhere in the whole log, every earlier test's handshakes included.
      expect(server.log()).to.not.include(token);
      expect(server.log()).to.not.include(refused);
    });
  });

  describe('handshake HTTP refusals', () => {
    it('a foreign Origin gets 403 before any upgrade', async () => {
      expect(await TestClient.handshakeStatus(server.url, { token, origin: 'https://evil.test' })).to.equal(403);
    });
    it('an unknown path gets 404', async () => {
      expect(await TestClient.handshakeStatus(server.url, { token, path: '/elsewhere' })).to.equal(404);
    });
  });
});
