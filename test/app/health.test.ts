/**
 * GET /api/health of the real app (`next start` of the e2e build) reports the WebSocket
 * server's health too, so a monitor that watches one URL sees the real-time layer go down:
 * 200 while the server at WS_PUBLISH_URL answers `ok`, 503 once it is stopped, degraded, hung
 * or answering something else; not checked (200) when the app reaches the servers only through
 * Redis and names no WS_PUBLISH_URL.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../e2e/support/next-app.ts';

type Json = Record<string, unknown>;

async function health(app: AppProcess): Promise<{ status: number; json: Json; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${app.url}/api/health`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, json: (await response.json()) as Json, ms: Date.now() - started };
}

const appEnv = () => ({ DATABASE_URL: testDatabaseUrl(), NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET, DATABASE_POOL_MAX: '2' });

describe('GET /api/health includes the WebSocket server', function () {
  this.timeout(30_000);

  before(async function () {
    this.timeout(300_000);
    await ensureAppBuilt();
  });

  describe('against the real server (WS_PUBLISH_URL, no Redis)', () => {
    let ws: ServerProcess;
    let app: AppProcess;

    before(async function () {
      ws = await startServer({ broker: 'memory' });
      app = await startApp({
        ...appEnv(),
        REDIS_URL: '',
        WS_PUBLISH_URL: ws.httpUrl,
        WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
      });
    });

    after(async () => {
      await app?.stop();
      await ws?.stop();
    });

    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.log(`      app log (tail):\n${app?.log().slice(-3000)}`);
    });

    it('200 with the server’s status, node and dependencies while it runs', async () => {
      const { status, json } = await health(app);
      expect(status).to.equal(200);
      expect(json).to.include({ ok: true, status: 'ok' });
      expect(json.websocket).to.include({ status: 'ok', url: `${ws.httpUrl}/health`, httpStatus: 200, state: 'running', redis: 'not_configured', database: 'up' });
      expect((json.websocket as Json).nodeId).to.be.a('string');
      // The rest of the body is unchanged.
      expect(json.publisher).to.have.keys('enqueued', 'invalid', 'published', 'failed', 'lastFailureAt');
      expect(json.outbox).to.include({ failed: 0 });
    });

    it('503 once the server is stopped, with the reason, and the rest of the body', async () => {
      await ws.stop();
      const { status, json } = await health(app);
      expect(status).to.equal(503);
      expect(json).to.include({ ok: false, status: 'degraded' });
      expect(json.websocket).to.include({ status: 'unreachable', url: `${ws.httpUrl}/health`, error: 'ECONNREFUSED' });
      expect(json.publisher).to.be.an('object');
    });
  });

  describe('against a scripted server (degraded, hung, not the health JSON)', () => {
    let mode: 'ok' | 'degraded' | 'hang' | 'html' = 'ok';
    const hung: ServerResponse[] = [];
    let fake: Server;
    let app: AppProcess;

    before(async function () {
      fake = createServer((request, response) => {
        if (request.url !== '/health') return void response.writeHead(404).end();
        if (mode === 'hang') return void hung.push(response);
        if (mode === 'html') return void response.writeHead(200, { 'content-type': 'text/html' }).end('<h1>default site</h1>');
        const body = { status: mode, state: 'running', nodeId: 'fake:1', redis: mode === 'ok' ? 'ready' : 'down', database: 'up', connections: 3 };
        response.writeHead(mode === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
      await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      app = await startApp({ ...appEnv(), REDIS_URL: '', WS_PUBLISH_URL: url, WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET });
    });

    after(async () => {
      await app?.stop();
      for (const response of hung) response.destroy();
      fake?.closeAllConnections();
      await new Promise((resolve) => fake?.close(resolve));
    });

    it('503 when the server says degraded (its Redis down), with what it reported', async () => {
      expect((await health(app)).status, 'while it says ok').to.equal(200);
      mode = 'degraded';
      const { status, json } = await health(app);
      expect(status).to.equal(503);
      expect(json).to.include({ ok: false, status: 'degraded' });
      expect(json.websocket).to.include({ status: 'degraded', httpStatus: 503, redis: 'down', database: 'up', nodeId: 'fake:1' });
    });

    it('503 within the short timeout when the server accepts but never answers', async () => {
      mode = 'hang';
      const { status, json, ms } = await health(app);
      expect(status).to.equal(503);
      expect(json.websocket).to.include({ status: 'unreachable', error: 'no answer in 1500 ms' });
      // 1.5 s for the server, the rest is the app's own work.
      expect(ms, 'answer time of /api/health').to.be.below(4_000);
      expect(hung.length).to.be.at.least(1);
    });

    it('503 when something else answers at that address', async () => {
      mode = 'html';
      const { status, json } = await health(app);
      expect(status).to.equal(503);
      expect(json.websocket).to.include({ status: 'unreachable' });
      expect(String((json.websocket as Json).error)).to.match(/^HTTP 200, not the server's health JSON$/);
    });
  });

  describe('with REDIS_URL and no WS_PUBLISH_URL', () => {
    let app: AppProcess;

    before(async function () {
      app = await startApp({ ...appEnv(), REDIS_URL: testRedisUrl(), WS_PUBLISH_URL: undefined });
    });

    after(async () => app?.stop());

    it('200, the server not checked: the app knows it only through Redis', async () => {
      const { status, json } = await health(app);
      expect(status).to.equal(200);
      expect(json).to.include({ ok: true, status: 'ok' });
      expect(json.websocket).to.deep.equal({ status: 'not_configured' });
    });
  });
});
