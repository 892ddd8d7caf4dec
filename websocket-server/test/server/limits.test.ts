import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { CLOSE_CODES, retryAfterFromReason } from '../../src/protocol/index.ts';
import { testDatabaseUrl } from '../../../test/support/env.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { mintSessionToken } from '../support/tokens.ts';

/**
 * The server's limits, against the real server process: admission at upgrade time (global,
 * pending-handshake, per-address and per-user caps, each answered with an HTTP status and
 * Retry-After), the per-user subscribe budget, database timeouts that fail a handshake fast
 * (1013 with a retry hint), and refused sockets that are destroyed promptly even when the client
 * never answers. Figures the issue's closing note quotes are printed as `[limits] …` lines.
 */

// ---------------------------------------------------------------------------------------------
// Helpers

const report = (line: string) => console.log(`      [limits] ${line}`);

interface RawUpgrade {
  status: number;
  headers: Record<string, string>;
  socket: Socket;
  /** Bytes that followed the response head in the same read (a close frame, say). */
  rest: Buffer;
  /** When the response head arrived (performance.now()). */
  at: number;
}

interface RawOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Source address on loopback (127.0.0.2, …): another client address without a proxy. */
  localAddress?: string;
  /** Keep our side open after the server's FIN (a client that never closes). */
  allowHalfOpen?: boolean;
  /** Leave out Sec-WebSocket-Key: a malformed upgrade that ws itself refuses with 400. */
  withoutKey?: boolean;
}

/** Opens a TCP connection and writes a WebSocket upgrade request on it; nothing is read. */
function sendUpgrade(port: number, options: RawOptions = {}): Socket {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress: options.localAddress, allowHalfOpen: options.allowHalfOpen ?? false });
  socket.once('connect', () => {
    const lines = [
      'GET / HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      ...(options.withoutKey ? [] : [`Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`]),
      'Sec-WebSocket-Version: 13',
      ...(options.token === undefined ? [] : [`Authorization: Bearer ${options.token}`]),
      ...Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
  return socket;
}

/**
 * A WebSocket upgrade over a bare TCP socket, so a test sees the status and headers of a refusal
 * and controls what the client does afterwards. Resolves once the response head is in, with the
 * socket paused (nothing more is read until the caller resumes it).
 */
function rawUpgrade(port: number, options: RawOptions = {}): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = sendUpgrade(port, options);
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no response head in 5 s')), 5_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.on('error', fail);
    socket.once('close', () => fail(new Error(`closed before a response head (${buffer.length} bytes)`)));
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.pause();
      socket.off('data', onData);
      socket.off('error', fail);
      socket.removeAllListeners('close');
      socket.on('error', () => {});
      clearTimeout(timer);
      const [statusLine = '', ...headerLines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, socket, rest: buffer.subarray(end + 4), at: performance.now() });
    };
    socket.on('data', onData);
  });
}

/** Status (and Retry-After) of one raw upgrade; the socket is dropped at once. */
async function upgradeStatus(port: number, options: RawOptions = {}): Promise<{ status: number; retryAfter: string | undefined }> {
  const response = await rawUpgrade(port, options);
  response.socket.destroy();
  return { status: response.status, retryAfter: response.headers['retry-after'] };
}

/** `count` upgrades at once; the tally of statuses and every Retry-After of a refusal. */
async function burst(port: number, count: number, options: (i: number) => RawOptions = () => ({})) {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: count }, (_, i) => upgradeStatus(port, options(i))));
  const elapsedMs = performance.now() - started;
  const admitted = results.filter((r) => r.status === 101).length;
  const refused = results.filter((r) => r.status === 429);
  return { admitted, refused: refused.length, retryAfters: refused.map((r) => r.retryAfter), other: results.filter((r) => r.status !== 101 && r.status !== 429), elapsedMs };
}

async function metricsText(server: ServerProcess): Promise<string> {
  const response = await fetch(`${server.httpUrl}/metrics`);
  expect(response.status).to.equal(200);
  return response.text();
}

/** One sample of a Prometheus text exposition (`name{labels} value`); 0 when absent. */
function sample(text: string, name: string, labels = ''): number {
  const key = labels ? `${name}{${labels}}` : name;
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? 0 : Number(line.slice(key.length + 1));
}

async function metric(server: ServerProcess, name: string, labels = ''): Promise<number> {
  return sample(await metricsText(server), name, labels);
}

const rejections = (server: ServerProcess, reason: string) => metric(server, 'ws_handshake_rejections_total', `reason="${reason}"`);

async function health(server: ServerProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.httpUrl}/health`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls `probe` until it returns true; fails with `what` after `timeoutMs`. */
async function waitFor(probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const waitForConnections = (server: ServerProcess, n: number) =>
  waitFor(async () => (await health(server)).body.connections === n, `/health connections = ${n}`);

/** Resolves with the time (performance.now()) the socket closed, or rejects after `timeoutMs`. */
function closedWithin(socket: Socket, timeoutMs: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(performance.now());
    const timer = setTimeout(() => reject(new Error(`${what}: the server had not closed the socket after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now());
    });
  });
}

/**
 * Kernel state of our end of a loopback TCP connection (Linux /proc/net/tcp), read without
 * touching the socket: '01' established, '08' CLOSE_WAIT (the peer closed its side). Undefined
 * when the entry (or /proc) is not there.
 */
function tcpState(localPort: number, remotePort: number): string | undefined {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (local?.endsWith(`:${hex(localPort)}`) && remote?.endsWith(`:${hex(remotePort)}`)) return state;
    }
  }
  return undefined;
}

/** The code and reason of the first server frame in `bytes`, if it is a close frame. */
function closeFrame(bytes: Buffer): { code: number; reason: string } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0x88) return undefined;
  const length = bytes[1]! & 0x7f;
  return { code: bytes.readUInt16BE(2), reason: bytes.subarray(4, 2 + length).toString('utf8') };
}

/** A TCP server that accepts connections and never answers: a database that hangs. */
async function startBlackhole(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: NetServer = createNetServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

const retryAfterSeconds = (value: string | undefined) => {
  expect(value, 'Retry-After header').to.match(/^\d+$/);
  return Number(value);
};

// ---------------------------------------------------------------------------------------------

describe('RealtimeServer › limits', () => {
  let fixtures: Fixtures;

  before(() => {
    fixtures = new Fixtures();
  });
  after(() => fixtures?.close());

  const newToken = async () => mintSessionToken((await fixtures.user()).id);

  describe('per-user connection cap (MAX_CONNECTIONS_PER_USER=3)', () => {
    let server: ServerProcess;
    const clients: TestClient[] = [];
    before(async () => {
      server = await startServer({ broker: 'memory', env: { MAX_CONNECTIONS_PER_USER: '3' } });
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      await waitForConnections(server, 0);
    });
    after(() => server?.stop());

    it('refuses the 4th connection of a user with 429 + Retry-After, admits another user, and admits again once one closed', async () => {
      const token = await newToken();
      for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(server.url, { token }));
      const refused = await upgradeStatus(server.port, { token });
      expect(refused.status).to.equal(429);
      expect(retryAfterSeconds(refused.retryAfter)).to.be.at.least(1);
      expect(await TestClient.handshakeStatus(server.url, { token })).to.equal(429);
      expect(await rejections(server, 'user_connections')).to.equal(2);

      clients.push(await TestClient.connect(server.url, { token: await newToken() }));

      const first = clients.shift()!;
      first.close();
      await first.closed;
      await waitForConnections(server, 3);
      clients.push(await TestClient.connect(server.url, { token }));
      await waitForConnections(server, 4);
    });

    it('counts handshakes still in flight: 8 concurrent connects of one user open at most 3 sockets', async () => {
      const token = await newToken();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const client = TestClient.open(server.url, { token });
          const status = new Promise<number>((resolve) => client.ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
          const result = await Promise.race([
            client.next((f) => f.type === 'connected').then(() => 'connected' as const),
            status.then((code) => `http ${code}`),
            client.closed.then((info) => `closed ${info.code}`),
          ]);
          if (result === 'connected') clients.push(client);
          else client.ws.terminate();
          return result;
        }),
      );
      const connected = outcomes.filter((o) => o === 'connected').length;
      report(`8 concurrent connects of one user with a cap of 3: ${connected} connected, ${outcomes.filter((o) => o === 'http 429').length} got 429`);
      expect(connected).to.equal(3);
      expect(outcomes.filter((o) => o !== 'connected')).to.deep.equal(Array(5).fill('http 429'));
    });

    it('destroys a socket refused with 429 even when the client never closes its side', async () => {
      const token = await newToken();
      for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(server.url, { token }));
      // allowHalfOpen: our side stays open after the server's FIN, as a client that ignores it.
      const refused = await rawUpgrade(server.port, { token, allowHalfOpen: true });
      expect(refused.status).to.equal(429);
      const { socket } = refused;
      socket.resume();
      // While the server still holds its end, these bytes are taken in silence; once it has
      // destroyed the socket, the next one is answered with a reset and our socket closes.
      const probe = setInterval(() => {
        if (!socket.destroyed) socket.write('x');
      }, 25);
      try {
        const closedAt = await closedWithin(socket, 3_000, 'refused with 429');
        const ms = closedAt - refused.at;
        report(`429 over the per-user cap, client never closes: server dropped the socket after ${ms.toFixed(0)} ms`);
        expect(ms).to.be.lessThan(3_000);
      } finally {
        clearInterval(probe);
        socket.destroy();
      }
    });

    it('terminates an unauthenticated socket whose client reads the close frame but never answers it', async () => {
      const upgraded = await rawUpgrade(server.port, { token: 'not-a-session-token' });
      expect(upgraded.status).to.equal(101);
      const { socket } = upgraded;
      let received = upgraded.rest;
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      socket.resume();
      try {
        const closedAt = await closedWithin(socket, 3_000, 'unauthenticated, close frame never answered');
        const ms = closedAt - upgraded.at;
        report(`4001, close frame read but never answered: server dropped the socket after ${ms.toFixed(0)} ms (ws alone waits 30 s)`);
        expect(closeFrame(received)?.code).to.equal(CLOSE_CODES.unauthorized);
        expect(ms).to.be.lessThan(3_000);
      } finally {
        socket.destroy();
      }
    });

    it('terminates an unauthenticated socket whose client stops reading after the 101', async function () {
      expect(existsSync('/proc/net/tcp'), 'this test reads the socket state from /proc/net/tcp (Linux)').to.equal(true);
      // allowHalfOpen: the server's FIN must not make our side close either.
      const upgraded = await rawUpgrade(server.port, { token: 'not-a-session-token', allowHalfOpen: true });
      expect(upgraded.status).to.equal(101);
      const { socket } = upgraded;
      // Paused: the close frame is never handed to us, nor answered. Whether the server has closed
      // its end is read from the kernel (our side in CLOSE_WAIT), not from the socket.
      const localPort = socket.localPort!;
      expect(tcpState(localPort, server.port)).to.equal('01');
      try {
        await waitFor(() => tcpState(localPort, server.port) === '08', 'the server to close the paused socket (CLOSE_WAIT)', 3_000);
        const ms = performance.now() - upgraded.at;
        report(`4001, client stopped reading after the 101: server closed the socket after ${ms.toFixed(0)} ms`);
        expect(ms).to.be.lessThan(3_000);
      } finally {
        socket.destroy();
      }
    });
  });

  describe('per-address connect rate (CONNECT_BURST_PER_IP=5, CONNECT_RATE_PER_IP=1)', () => {
    const env = { CONNECT_BURST_PER_IP: '5', CONNECT_RATE_PER_IP: '1' };

    describe('without TRUST_PROXY', () => {
      let server: ServerProcess;
      let token: string;
      before(async () => {
        server = await startServer({ broker: 'memory', env });
        token = await newToken();
      });
      after(() => server?.stop());

      it('a burst of 10 quick connects from one address: 5 admitted, the rest 429 + Retry-After', async () => {
        const result = await burst(server.port, 10, () => ({ token, localAddress: '127.0.0.2' }));
        report(`burst of 10 from one address: ${result.admitted} admitted, ${result.refused} refused (429) in ${result.elapsedMs.toFixed(0)} ms`);
        expect(result.other).to.deep.equal([]);
        expect(result.admitted).to.be.at.least(5).and.at.most(5 + Math.floor(result.elapsedMs / 1000));
        expect(result.refused).to.equal(10 - result.admitted);
        for (const value of result.retryAfters) expect(retryAfterSeconds(value)).to.be.within(1, 2);
        expect(await rejections(server, 'address_rate')).to.equal(result.refused);
      });

      it('ignores X-Real-IP and X-Forwarded-For: a client cannot pick its own address', async () => {
        const result = await burst(server.port, 10, (i) => ({
          token,
          localAddress: '127.0.0.3',
          headers: { 'X-Real-IP': `203.0.113.${i + 1}`, 'X-Forwarded-For': `198.51.100.${i + 1}` },
        }));
        report(`burst of 10 from one address with 10 different X-Real-IP values, no TRUST_PROXY: ${result.admitted} admitted`);
        expect(result.admitted).to.be.at.least(5).and.at.most(5 + Math.floor(result.elapsedMs / 1000));
        // Another real address has its own budget.
        const other = await burst(server.port, 5, () => ({ token, localAddress: '127.0.0.4' }));
        expect(other.admitted).to.equal(5);
      });

      it('never refuses a client at the sustained rate (1 connect/s), and refuses one going faster', async function () {
        this.timeout(20_000);
        const from = { token, localAddress: '127.0.0.5' };
        // Spend the burst down to one spare token, so every later connect needs the refill.
        const drained = await burst(server.port, 4, () => from);
        expect(drained.admitted).to.equal(4);
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          statuses.push((await upgradeStatus(server.port, from)).status);
        }
        report(`1 connect/s for 5 s after the burst was spent: ${statuses.join(' ')}`);
        expect(statuses).to.deep.equal([101, 101, 101, 101, 101]);
        // And it was really at the edge: three more at once do not all get in.
        const faster = await burst(server.port, 3, () => from);
        expect(faster.refused).to.be.at.least(1);
      });
    });

    describe('with TRUST_PROXY=1', () => {
      let server: ServerProcess;
      let token: string;
      before(async () => {
        server = await startServer({ broker: 'memory', env: { ...env, TRUST_PROXY: '1' } });
        token = await newToken();
      });
      after(() => server?.stop());

      it('gives each X-Real-IP its own budget, though every request comes from 127.0.0.1', async () => {
        const a = await burst(server.port, 10, () => ({ token, headers: { 'X-Real-IP': '203.0.113.10' } }));
        const b = await burst(server.port, 10, () => ({ token, headers: { 'X-Real-IP': '203.0.113.20' } }));
        report(`TRUST_PROXY=1, 10 each from X-Real-IP 203.0.113.10 and .20: ${a.admitted} and ${b.admitted} admitted`);
        for (const result of [a, b]) {
          expect(result.admitted).to.be.at.least(5).and.at.most(5 + Math.floor(result.elapsedMs / 1000));
          expect(result.refused).to.equal(10 - result.admitted);
        }
      });

      it('takes the last hop of X-Forwarded-For (the one the proxy appended), not what the client wrote before it', async () => {
        const result = await burst(server.port, 10, (i) => ({ token, headers: { 'X-Forwarded-For': `10.9.9.${i}, 203.0.113.30` } }));
        expect(result.admitted).to.be.at.least(5).and.at.most(5 + Math.floor(result.elapsedMs / 1000));
      });
    });
  });

  describe('pending handshakes cap (MAX_PENDING_HANDSHAKES=2, database that never answers)', () => {
    let server: ServerProcess;
    let blackhole: Awaited<ReturnType<typeof startBlackhole>>;
    before(async () => {
      blackhole = await startBlackhole();
      server = await startServer({
        broker: 'memory',
        env: { DATABASE_URL: `postgresql://app@127.0.0.1:${blackhole.port}/app`, MAX_PENDING_HANDSHAKES: '2', DATABASE_CONNECT_TIMEOUT_MS: '1500' },
      });
    });
    after(async () => {
      await server?.stop();
      await blackhole?.close();
    });

    it('answers a 3rd concurrent handshake with 503 + Retry-After at once while two wait for the database', async () => {
      const token = await newToken();
      const pending = [TestClient.open(server.url, { token }), TestClient.open(server.url, { token })];
      await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 2, 'ws_pending_handshakes = 2');
      const started = performance.now();
      const third = await upgradeStatus(server.port, { token });
      const ms = performance.now() - started;
      report(`3rd handshake while 2 wait on a stalled database: HTTP ${third.status} in ${ms.toFixed(0)} ms`);
      expect(third.status).to.equal(503);
      expect(retryAfterSeconds(third.retryAfter)).to.be.at.least(1);
      expect(ms).to.be.lessThan(500);
      const text = await metricsText(server);
      expect(sample(text, 'ws_pending_handshakes'), 'the first two are still pending').to.equal(2);
      expect(sample(text, 'ws_handshake_rejections_total', 'reason="pending_handshakes"')).to.equal(1);
      // The two pending ones end with 1013 when the connect timeout passes, and free their slots.
      for (const client of pending) expect((await client.closed).code).to.equal(CLOSE_CODES.tryAgainLater);
      await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 0, 'ws_pending_handshakes = 0');
    });

    it('frees the slot of an upgrade that ws itself refuses as malformed (no Sec-WebSocket-Key)', async () => {
      // Each passes admission (a slot is taken) and is then refused by ws with 400. Were the slot
      // not given back, two of them would leave the server refusing every upgrade with 503.
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await upgradeStatus(server.port, { withoutKey: true })).status);
      expect(statuses).to.deep.equal([400, 400, 400, 400]);
      await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 0, 'ws_pending_handshakes = 0');
    });

    it('frees the slots of clients that gave up while their handshake waited for the database', async () => {
      const token = await newToken();
      const quitters = [sendUpgrade(server.port, { token }), sendUpgrade(server.port, { token })];
      for (const socket of quitters) socket.on('error', () => {});
      await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 2, 'ws_pending_handshakes = 2');
      quitters[0]!.end(); // FIN: half-closed
      quitters[1]!.destroy();
      // Their database reads are still in flight (the slots bound those), but once they end, the
      // slots must be free: the gauge returns to 0 and a new handshake is admitted.
      await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 0, 'ws_pending_handshakes = 0', 5_000);
      quitters[0]!.destroy();
      const next = sendUpgrade(server.port, { token });
      next.on('error', () => {});
      try {
        await waitFor(async () => (await metric(server, 'ws_pending_handshakes')) === 1, 'a new handshake admitted');
      } finally {
        next.destroy();
      }
    });
  });

  describe('global cap (MAX_CONNECTIONS=3)', () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServer({ broker: 'memory', env: { MAX_CONNECTIONS: '3' } });
    });
    after(() => server?.stop());

    it('answers the 4th connection with 503 + Retry-After, and admits again once one closed', async () => {
      const clients = [];
      for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(server.url, { token: await newToken() }));
      const refused = await upgradeStatus(server.port, { token: await newToken() });
      expect(refused.status).to.equal(503);
      expect(retryAfterSeconds(refused.retryAfter)).to.be.at.least(1);
      expect(await rejections(server, 'max_connections')).to.equal(1);
      clients[0]!.close();
      await waitForConnections(server, 2);
      clients.push(await TestClient.connect(server.url, { token: await newToken() }));
      for (const client of clients) client.close();
      await waitForConnections(server, 0);
    });
  });

  describe('database timeouts', () => {
    /** Opens a socket with a valid token and waits for its close; the code, reason and time. */
    const failedHandshake = async (server: ServerProcess, token: string) => {
      const started = performance.now();
      const client = TestClient.open(server.url, { token });
      const closed = await Promise.race([
        client.closed,
        client.next((f) => f.type === 'connected', 10_000).then(() => {
          client.close();
          throw new Error('the handshake succeeded');
        }),
      ]);
      return { ...closed, ms: performance.now() - started };
    };

    describe('unreachable (DATABASE_CONNECT_TIMEOUT_MS=500 against a server that never answers)', () => {
      let server: ServerProcess;
      let blackhole: Awaited<ReturnType<typeof startBlackhole>>;
      before(async () => {
        blackhole = await startBlackhole();
        server = await startServer({
          broker: 'memory',
          env: { DATABASE_URL: `postgresql://app@127.0.0.1:${blackhole.port}/app`, DATABASE_CONNECT_TIMEOUT_MS: '500' },
        });
      });
      after(async () => {
        await server?.stop();
        await blackhole?.close();
      });

      it('fails a handshake fast: close 1013 with retry_after_ms, counted as reason database', async () => {
        const token = await newToken();
        const attempts = [];
        for (let i = 0; i < 2; i++) attempts.push(await failedHandshake(server, token));
        report(`database unreachable, connect timeout 500 ms: handshakes closed with ${attempts.map((a) => `${a.code} after ${a.ms.toFixed(0)} ms`).join(', ')}`);
        expect(blackhole.accepted(), 'the server did try the database').to.be.at.least(1);
        for (const attempt of attempts) {
          expect(attempt.code).to.equal(CLOSE_CODES.tryAgainLater);
          expect(attempt.reason).to.match(/retry_after_ms=\d+$/);
          expect(retryAfterFromReason(attempt.reason)).to.be.at.least(1);
          expect(attempt.ms).to.be.lessThan(3_000);
        }
        expect(await rejections(server, 'database')).to.equal(2);
      });
    });

    describe('reachable but stalled (DATABASE_STATEMENT_TIMEOUT_MS=500, a proxy paused after the pool connected)', () => {
      let server: ServerProcess;
      let proxy: TcpProxy;
      before(async () => {
        const proxied = await TcpProxy.forUrl(testDatabaseUrl());
        proxy = proxied.proxy;
        // No access cache: a session seen before would otherwise need no database at all.
        server = await startServer({ broker: 'memory', env: { DATABASE_URL: proxied.url, DATABASE_STATEMENT_TIMEOUT_MS: '500', ACCESS_CACHE_TTL_MS: '0' } });
      });
      after(async () => {
        proxy?.resume();
        await server?.stop();
        await proxy?.close();
      });

      it('fails a handshake during the stall with 1013 fast, and handshakes work again after it', async function () {
        this.timeout(15_000);
        const token = await newToken();
        const warm = await TestClient.connect(server.url, { token });
        warm.close();
        expect(proxy.accepted, 'the pool connected through the proxy').to.be.at.least(1);

        proxy.pause();
        const stalled = await failedHandshake(server, token);
        // PostgreSQL never sees the statement, so the client-side bound (statement timeout + 1 s) ends it.
        report(`database stalled behind a paused proxy, DATABASE_STATEMENT_TIMEOUT_MS=500: handshake closed with ${stalled.code} after ${stalled.ms.toFixed(0)} ms`);
        expect(stalled.code).to.equal(CLOSE_CODES.tryAgainLater);
        expect(retryAfterFromReason(stalled.reason)).to.be.at.least(1);
        expect(stalled.ms).to.be.lessThan(3_000);
        expect(await rejections(server, 'database')).to.equal(1);

        proxy.resume();
        const started = performance.now();
        const again = await TestClient.connect(server.url, { token });
        report(`after the stall: a handshake connected in ${(performance.now() - started).toFixed(0)} ms`);
        expect((await again.request({ type: 'ping' })).type).to.equal('pong');
        again.close();
        expect((await health(server)).status).to.equal(200);
      });

      it('fails a handshake whose statement waits on a lock inside PostgreSQL at the statement timeout', async function () {
        this.timeout(15_000);
        const token = await newToken();
        (await TestClient.connect(server.url, { token })).close();
        const databaseBefore = await rejections(server, 'database');
        // Another session holds the User table: the handshake's lookup reaches PostgreSQL and waits
        // there until statement_timeout cancels it.
        let unlock!: () => void;
        const unlocked = new Promise<void>((resolve) => (unlock = resolve));
        let locked!: () => void;
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const holder = fixtures.prisma.$transaction(
          async (tx) => {
            await tx.$executeRawUnsafe('LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE');
            locked();
            await unlocked;
          },
          { timeout: 10_000, maxWait: 5_000 },
        );
        try {
          await isLocked;
          const blocked = await failedHandshake(server, token);
          report(`statement waiting on a lock, DATABASE_STATEMENT_TIMEOUT_MS=500: handshake closed with ${blocked.code} after ${blocked.ms.toFixed(0)} ms`);
          expect(blocked.code).to.equal(CLOSE_CODES.tryAgainLater);
          expect(retryAfterFromReason(blocked.reason)).to.be.at.least(1);
          // Below the client-side bound (1.5 s): it was PostgreSQL's statement_timeout.
          expect(blocked.ms).to.be.lessThan(1_300);
          expect(await rejections(server, 'database')).to.equal(databaseBefore + 1);
        } finally {
          unlock();
          await holder;
        }
        (await TestClient.connect(server.url, { token })).close();
      });
    });
  });

  describe('per-user subscribe budget (SUBSCRIBE_BURST_PER_USER=5, SUBSCRIBES_PER_SECOND_PER_USER=1)', () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServer({ broker: 'memory', env: { SUBSCRIBE_BURST_PER_USER: '5', SUBSCRIBES_PER_SECOND_PER_USER: '1' } });
    });
    after(() => server?.stop());

    it('answers excess subscribes with rate_limited + retryAfterMs, keeps the sockets open, and bounds the database work', async () => {
      const user = await fixtures.user();
      await fixtures.notification(user.id);
      const token = await mintSessionToken(user.id);
      const sockets = await Promise.all([1, 2, 3].map(() => TestClient.connect(server.url, { token })));
      const channel = `notifications_${user.id}`;
      const before = await metricsText(server);
      const started = performance.now();
      let subscribed = 0;
      const limited: number[] = [];
      // 20 subscribe/unsubscribe loops of one user, spread over 3 sockets running side by side.
      await Promise.all(
        sockets.map(async (socket, s) => {
          for (let i = s; i < 20; i += sockets.length) {
            const reply = await socket.subscribe(channel);
            if (reply.type === 'subscribed') {
              subscribed++;
              expect((await socket.request({ type: 'unsubscribe', channel })).type).to.equal('unsubscribed');
            } else {
              expect(reply).to.include({ type: 'error', code: 'rate_limited', channel });
              limited.push(reply.retryAfterMs as number);
            }
          }
        }),
      );
      const elapsedS = (performance.now() - started) / 1000;
      const after = await metricsText(server);
      const reached = sample(after, 'ws_subscribe_duration_seconds_count') - sample(before, 'ws_subscribe_duration_seconds_count');
      const bound = 5 + 1 * elapsedS + 1;
      report(
        `subscribe budget: 20 subscribes of one user over 3 sockets in ${(elapsedS * 1000).toFixed(0)} ms: ${subscribed} subscribed, ${limited.length} rate_limited ` +
          `(retryAfterMs ${Math.min(...limited)}–${Math.max(...limited)}), ${reached} reached the database (bound ${bound.toFixed(1)})`,
      );
      expect(subscribed + limited.length).to.equal(20);
      expect(reached).to.equal(subscribed);
      expect(reached).to.be.at.most(bound);
      expect(limited.length).to.be.at.least(20 - Math.floor(bound));
      for (const ms of limited) expect(ms).to.be.within(1, 1_000);
      expect(sample(after, 'ws_reply_errors_total', 'code="rate_limited"')).to.equal(limited.length);

      // Nothing was closed for it.
      for (const socket of sockets) expect((await socket.request({ type: 'ping' })).type).to.equal('pong');
      expect((await health(server)).body.connections).to.equal(3);
      // The budget is per user: another user subscribes at once.
      const other = await fixtures.user();
      const otherSocket = await TestClient.connect(server.url, { token: await mintSessionToken(other.id) });
      await otherSocket.mustSubscribe(`notifications_${other.id}`);
      // And the hint is honest: after retryAfterMs the user subscribes again.
      const hint = (await sockets[0]!.subscribe(channel)) as { type: string; retryAfterMs?: number };
      if (hint.type === 'error') {
        await new Promise((resolve) => setTimeout(resolve, hint.retryAfterMs! + 20));
        await sockets[0]!.mustSubscribe(channel);
      }
      for (const socket of [...sockets, otherSocket]) socket.close();
      await waitForConnections(server, 0);
    });
  });

  describe('a connect storm from one address (TRUST_PROXY=1, CONNECT_BURST_PER_IP=50)', () => {
    let server: ServerProcess;
    before(async () => {
      // The legitimate client loops connect + subscribe as fast as it can: its subscribe budget is
      // not what this test is about.
      server = await startServer({
        broker: 'memory',
        env: { TRUST_PROXY: '1', CONNECT_BURST_PER_IP: '50', CONNECT_RATE_PER_IP: '10', SUBSCRIBES_PER_SECOND_PER_USER: '1000', SUBSCRIBE_BURST_PER_USER: '1000' },
      });
    });
    after(() => server?.stop());

    it('refuses the storm cheaply, stays healthy, and a client from another address still connects and subscribes', async function () {
      this.timeout(40_000);
      const user = await fixtures.user();
      const token = await mintSessionToken(user.id);
      const storm = { attempts: 0, admitted: 0, refused: 0, other: new Map<string, number>() };
      const STORM_MS = 3_000;
      const started = performance.now();
      const stormOver = () => performance.now() - started >= STORM_MS && storm.attempts >= 500;
      const deadline = started + 20_000;
      // As fast as possible: 64 connects in flight at any time, for 3 s and at least 500 connects.
      // No token: an admitted one gets 101 and then 4001.
      const worker = async () => {
        while (!stormOver() && performance.now() < deadline) {
          storm.attempts++;
          try {
            const { status } = await upgradeStatus(server.port, { headers: { 'X-Real-IP': '198.51.100.66' } });
            if (status === 101) storm.admitted++;
            else if (status === 429) storm.refused++;
            else storm.other.set(String(status), (storm.other.get(String(status)) ?? 0) + 1);
          } catch (error) {
            const key = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
            storm.other.set(key, (storm.other.get(key) ?? 0) + 1);
          }
        }
      };
      const workers = Promise.all(Array.from({ length: 64 }, worker));

      // Meanwhile a legitimate client behind the same proxy, from another address, connects,
      // subscribes and leaves, over and over; /health is read after each round.
      const legitMs: number[] = [];
      const healthStatuses: number[] = [];
      try {
        await waitFor(() => storm.refused >= 100, 'the storm to be refused', 10_000);
        while (!stormOver() || legitMs.length < 10) {
          const t0 = performance.now();
          const client = await TestClient.connect(server.url, { token, headers: { 'X-Real-IP': '192.0.2.10' } });
          legitMs.push(performance.now() - t0);
          await client.mustSubscribe(`feed_${user.id}`);
          client.close();
          await client.closed;
          healthStatuses.push((await health(server)).status);
          // Its own address has the same limits (burst 50, 10/s): a legitimate client paced at
          // ~7 connects a second stays within them however fast the machine runs the loop.
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, 150 - (performance.now() - t0))));
        }
      } finally {
        await workers;
      }
      const seconds = (performance.now() - started) / 1000;
      report(
        `storm: admitted ${(storm.admitted / seconds).toFixed(1)}/s, refused ${(storm.refused / seconds).toFixed(0)}/s, ` +
          `legit connect p50 ${percentile(legitMs, 50).toFixed(0)} ms (p95 ${percentile(legitMs, 95).toFixed(0)} ms, ${legitMs.length} connects + subscribes from another address, all accepted) ` +
          `[${storm.attempts} connects in ${seconds.toFixed(1)} s from one address, 64 in flight: ${storm.admitted} admitted (burst 50 + 10/s), ${storm.refused} refused with 429` +
          `${storm.other.size ? `, other ${JSON.stringify(Object.fromEntries(storm.other))}` : ''}]`,
      );
      expect(storm.other.size, JSON.stringify(Object.fromEntries(storm.other))).to.equal(0);
      expect(storm.admitted).to.be.at.most(50 + 10 * seconds + 1);
      expect(storm.refused).to.equal(storm.attempts - storm.admitted);
      expect(storm.attempts).to.be.at.least(500);
      expect(healthStatuses.every((s) => s === 200), `/health during the storm: ${healthStatuses.join(' ')}`).to.equal(true);
      expect(legitMs.length).to.be.at.least(10);
      expect((await health(server)).status).to.equal(200);
      expect(await rejections(server, 'address_rate')).to.equal(storm.refused);
    });
  });
});
