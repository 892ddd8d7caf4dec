import { expect } from 'chai';
import { CLOSE_CODES } from '../../src/protocol/index.ts';
import { TestClient } from '../support/client.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startServer, type ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';
import { testDatabaseUrl } from '../../../test/support/env.ts';
import { isAlive } from '../../../test/ops/support/pm2.ts';
import { channelName } from '../../src/protocol/index.ts';

describe('RealtimeServer › lifecycle', () => {
  let fixtures: Fixtures;
  let token: string;

  before(async () => {
    fixtures = new Fixtures();
    token = await mintSessionToken((await fixtures.user()).id);
  });
  after(() => fixtures?.close());

  describe('heartbeat', () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServer({ broker: 'memory', env: { HEARTBEAT_INTERVAL_MS: '150' } });
    });
    after(() => server?.stop());

    it('terminates a socket that does not answer pings, and keeps one that does', async () => {
      const silent = await TestClient.connect(server.url, { token, autoPong: false });
      const healthy = await TestClient.connect(server.url, { token });
      let pings = 0;
      healthy.ws.on('ping', () => pings++);
      const closed = await silent.closed;
      // Terminated without a close frame: the client sees an abnormal closure.
      expect(closed.code).to.equal(1006);
      // The answering client outlives several heartbeats.
      const deadline = Date.now() + 3_000;
      while (pings < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(pings).to.be.at.least(3);
      expect((await healthy.request({ type: 'ping' })).type).to.equal('pong');
      expect(server.log()).to.include('terminating unresponsive connection');
      healthy.close();
    });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal}: closes every socket with 1001 and exits 0`, async () => {
      const server = await startServer();
      const clients = await Promise.all([1, 2, 3].map(() => TestClient.connect(server.url, { token })));
      await clients[0]!.mustSubscribe(channelName.creator((await fixtures.creator()).id));
      const started = Date.now();
      const exitCode = await server.stop(signal);
      const codes = await Promise.all(clients.map(async (c) => (await c.closed).code));
      expect(codes).to.deep.equal([CLOSE_CODES.goingAway, CLOSE_CODES.goingAway, CLOSE_CODES.goingAway]);
      expect(exitCode).to.equal(0);
      // PM2's default kill_timeout is 1.6 s; the ecosystem file raises it, but a drain with
      // cooperative clients should need far less.
      expect(Date.now() - started).to.be.lessThan(5_000);
    });
  }

  describe('GET /health and GET /metrics', () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServer();
    });
    after(() => server?.stop());

    it('reports status, connections, channels and the state of Redis and the database', async () => {
      const user = await fixtures.user();
      const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      await client.mustSubscribe(`feed_${user.id}`);
      const response = await fetch(`${server.httpUrl}/health`);
      expect(response.status).to.equal(200);
      const body = (await response.json()) as Record<string, unknown>;
      expect(body).to.include({ status: 'ok', redis: 'ready', database: 'up', state: 'running' });
      expect(body.connections).to.equal(1);
      expect(body.channels).to.equal(1);
      client?.close();
    });

    it('exposes Prometheus metrics', async () => {
      const user = await fixtures.user();
      const client = await TestClient.connect(server.url, { token: await mintSessionToken(user.id) });
      await client.subscribe(`feed_${user.id}`);
      await client.subscribe(`feed_someoneelse1`);
      const response = await fetch(`${server.httpUrl}/metrics`);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/text\/plain/);
      const text = await response.text();
      expect(text).to.match(/^ws_connections 1$/m);
      expect(text).to.match(/^ws_subscriptions\{kind="feed"\} 1$/m);
      expect(text).to.match(/^ws_reply_errors_total\{code="forbidden"\} 1$/m);
      expect(text).to.include('process_resident_memory_bytes');
      client?.close();
    });
  });

  it('exits when the parent that forked it dies, even by SIGKILL', async function () {
    this.timeout(30_000);
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
    // A launcher in the manner of `npm start`: forks the server with IPC, prints its pid.
    const launcher = spawn(
      process.execPath,
      ['-e', `const c = require('node:child_process').fork(${JSON.stringify(main)}, [], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
              c.on('message', (m) => { if (m && m.type === 'listening') console.log(c.pid); });`],
      {
        env: { ...process.env, WS_PORT: '0', WS_HOST: '127.0.0.1', DATABASE_URL: testDatabaseUrl(), NEXTAUTH_SECRET: 'x', REDIS_URL: '' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let serverPid: number | undefined;
    try {
      serverPid = await new Promise<number>((resolve) => launcher.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
      expect(isAlive(serverPid)).to.equal(true);
      launcher.kill('SIGKILL');
      const deadline = Date.now() + 15_000;
      while (isAlive(serverPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(isAlive(serverPid), 'the server outlived its parent').to.equal(false);
    } finally {
      launcher.kill('SIGKILL');
      if (serverPid !== undefined && isAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });

  it('with METRICS_PORT, serves this process’s /health and /metrics on METRICS_PORT + NODE_APP_INSTANCE', async () => {
    const base = await freePortPair();
    const server = await startServer({ env: { METRICS_PORT: String(base), NODE_APP_INSTANCE: '1' } });
    try {
      const monitoring = `http://127.0.0.1:${base + 1}`;
      expect((await fetch(`${monitoring}/metrics`)).status).to.equal(200);
      const health = (await (await fetch(`${monitoring}/health`)).json()) as Record<string, unknown>;
      expect(health).to.include({ status: 'ok' });
      expect((await fetch(`${monitoring}/publish`, { method: 'POST', body: '{}' })).status).to.equal(404);
    } finally {
      expect(await server.stop()).to.equal(0);
    }
  });

  it('starts without Redis reachable, reports it down, and still serves connections', async () => {
    const server = await startServer({ env: { REDIS_URL: 'redis://127.0.0.1:1' } });
    try {
      const response = await fetch(`${server.httpUrl}/health`);
      expect(response.status).to.equal(503);
      expect((await response.json()) as Record<string, unknown>).to.include({ status: 'degraded', redis: 'down', database: 'up' });
      const client = await TestClient.connect(server.url, { token });
      expect((await client.request({ type: 'ping' })).type).to.equal('pong');
      client.close();
    } finally {
      await server.stop();
    }
  });
});

/** A base port whose successor is free too (the test uses base + 1). */
async function freePortPair(): Promise<number> {
  const { createServer } = await import('node:net');
  const listen = (port: number) =>
    new Promise<import('node:net').Server | null>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(null));
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  for (;;) {
    const first = await listen(0);
    const base = (first!.address() as import('node:net').AddressInfo).port;
    const second = await listen(base + 1);
    first!.close();
    if (second) {
      second.close();
      return base;
    }
  }
}
