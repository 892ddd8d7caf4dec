/**
 * The shipped nginx site with Debian's real nginx on loopback: `nginx -t` on it as shipped, then
 * a copy with free ports in front of a stub app and two WebSocket server nodes (one Redis).
 * A browser-like client reaches /ws through nginx with nothing but the session cookie and an
 * Origin header, and receives an event published to another node; the test-client CLI passes
 * through an HTTPS server block (wss://, self-signed certificate) as against a deployment.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, get, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { TestClient } from '../../websocket-server/test/support/client.ts';
import { Fixtures } from '../../websocket-server/test/support/fixtures.ts';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { mintSessionToken } from '../../websocket-server/test/support/tokens.ts';
import { testDatabaseUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../support/env.ts';
import { NGINX, NginxPrefix, renderSite, selfSignedCertificate, shippedSite, shippedSnippets } from './support/nginx.ts';
import { cleanEnv, repoRoot, tsxBin } from './support/paths.ts';
import { freePort } from '../support/ports.ts';
import { health, publishFeedUpdate } from './support/publish.ts';
import { run } from './support/run.ts';
import { until } from './support/wait.ts';

const DEFAULT_HEARTBEAT_S = 30;

/** A stand-in for the Next.js app: answers every request with the headers it received. */
function startStubApp(): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    response.setHeader('x-stub-app', '1');
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ url: request.url, headers: request.headers }));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : 0 });
    }),
  );
}

describe('nginx (nginx/sites-available/fonana.conf)', function () {
  this.timeout(60_000);

  before(function () {
    if (!existsSync(NGINX)) throw new Error(`${NGINX} not found: apt-get install -y nginx-light`);
  });

  describe('the shipped configuration', function () {
    const prefixes: NginxPrefix[] = [];
    after(async () => Promise.all(prefixes.map((p) => p.stop())));

    it('passes nginx -t under the harness main config, unchanged', async function () {
      const prefix = await NginxPrefix.create();
      prefixes.push(prefix);
      const result = await prefix.test();
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr).to.match(/test is successful/);
    });

    it('passes nginx -t under Debian’s own /etc/nginx/nginx.conf (paths moved to the prefix)', async function () {
      // Debian's nginx package ships it, and .ci/run installs that package: absent means broken.
      expect(existsSync('/etc/nginx/nginx.conf'), '/etc/nginx/nginx.conf (Debian nginx package)').to.equal(true);
      const prefix = await NginxPrefix.create();
      prefixes.push(prefix);
      const debian = (await readFile('/etc/nginx/nginx.conf', 'utf8'))
        // Dynamic modules load relative to the prefix; the site needs none of them.
        .replace(/^\s*include \/etc\/nginx\/modules-enabled\/\*\.conf;/m, '')
        .replace(/^\s*pid\s+[^;]+;/m, 'pid nginx.pid;')
        .replace(/^\s*error_log\s+[^;]+;/gm, 'error_log stderr;')
        .replace(/^\s*access_log\s+[^;]+;/gm, 'access_log off;')
        .replace(/include \/etc\/nginx\/sites-enabled\/\*;/, 'include sites-enabled/*.conf;')
        .replace(/^http \{/m, 'http {\n\tclient_body_temp_path tmp/body;\n\tproxy_temp_path tmp/proxy;');
      expect(debian).to.include('include sites-enabled/*.conf;');
      const conf = path.join(prefix.dir, 'debian-nginx.conf');
      await writeFile(conf, debian);
      const result = await prefix.test(conf);
      expect(result.code, result.stderr).to.equal(0);
    });

    it('keeps /ws open longer than two heartbeats', async function () {
      const snippet = await readFile(path.join(shippedSnippets, 'fonana-proxy.conf'), 'utf8');
      const wsBlock = /location = \/ws \{([\s\S]*?)\n\}/.exec(snippet)?.[1] ?? '';
      const seconds = Number(/proxy_read_timeout (\d+)s;/.exec(wsBlock)?.[1]);
      expect(seconds).to.be.above(2 * DEFAULT_HEARTBEAT_S);
      expect(wsBlock).to.match(/proxy_set_header Upgrade \$http_upgrade;/);
      expect(wsBlock).to.match(/proxy_set_header Connection \$fonana_connection_upgrade;/);
    });

    it('logs /ws with a format that has the path but not the query string', async function () {
      const snippet = await readFile(path.join(shippedSnippets, 'fonana-proxy.conf'), 'utf8');
      const wsBlock = /location = \/ws \{([\s\S]*?)\n\}/.exec(snippet)?.[1] ?? '';
      expect(wsBlock).to.match(/^\s*access_log \/var\/log\/nginx\/fonana-ws\.access\.log fonana_ws;/m);
      const site = await readFile(shippedSite, 'utf8');
      const format = /^log_format fonana_ws ([^;]*);/m.exec(site)?.[1] ?? '';
      expect(format).to.include('$uri');
      for (const variable of ['$request ', '$request"', '$request_uri', '$args', '$query_string', '$arg_']) {
        expect(format, variable).not.to.include(variable);
      }
    });
  });

  describe('on loopback, in front of a stub app and two WebSocket nodes', function () {
    let app: { server: Server; port: number };
    let nodes: ServerProcess[] = [];
    let prefix: NginxPrefix;
    let port: number;
    let origin: string;
    let wsUrl: string;
    let fixtures: Fixtures;
    let token: string;
    let userId: string;
    let email: string;
    let certDir: string;
    let certificate: string;
    let tlsPort: number;
    const clients: TestClient[] = [];

    before(async function () {
      port = await freePort();
      tlsPort = await freePort();
      origin = `http://127.0.0.1:${port}`;
      wsUrl = `ws://127.0.0.1:${port}`;
      certDir = await mkdtemp(path.join(tmpdir(), 'nginx-tls-'));
      const tls = await selfSignedCertificate(certDir);
      certificate = tls.certificate;
      app = await startStubApp();
      // Both nodes accept only the site's own origins, as in production (ALLOWED_ORIGINS).
      const allowed = `${origin},https://127.0.0.1:${tlsPort}`;
      nodes = await Promise.all([0, 1].map(() => startServer({ env: { ALLOWED_ORIGINS: allowed } })));
      const site = renderSite(await readFile(shippedSite, 'utf8'), {
        listenPort: port,
        appServers: [`127.0.0.1:${app.port}`],
        wsServers: nodes.map((node) => `127.0.0.1:${node.port}`),
        tls: { port: tlsPort, ...tls },
      });
      prefix = await NginxPrefix.create(site);
      const check = await prefix.test();
      expect(check.code, `nginx -t on the generated config:\n${check.stderr}`).to.equal(0);
      await prefix.start(port);
      fixtures = new Fixtures();
      const user = await fixtures.user({ name: 'nginx' });
      userId = user.id;
      email = user.email;
      token = await mintSessionToken(user.id);
    });

    after(async function () {
      for (const client of clients) client.close();
      await prefix?.stop();
      await Promise.all(nodes.map((node) => node.stop()));
      await new Promise((resolve) => app?.server.close(resolve));
      await fixtures?.close();
      if (certDir) await rm(certDir, { recursive: true, force: true });
    });

    it('lists every node in the generated upstream', async function () {
      const site = await readFile(path.join(prefix.dir, 'sites-available/fonana.conf'), 'utf8');
      for (const node of nodes) expect(site).to.include(`server 127.0.0.1:${node.port} `);
    });

    it('proxies the app with forwarded headers', async function () {
      // node:http rather than fetch, which does not let a caller set Host.
      const response = await new Promise<{ stub: unknown; body: string }>((resolve, reject) => {
        get(`${origin}/some/page?x=1`, { headers: { host: 'fonana.test' } }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ stub: res.headers['x-stub-app'], body }));
        }).on('error', reject);
      });
      expect(response.stub).to.equal('1');
      const { url, headers } = JSON.parse(response.body) as { url: string; headers: IncomingHttpHeaders };
      expect(url).to.equal('/some/page?x=1');
      expect(headers.host).to.equal('fonana.test');
      expect(headers['x-forwarded-for']).to.equal('127.0.0.1');
      expect(headers['x-forwarded-proto']).to.equal('http');
      expect(headers['x-real-ip']).to.equal('127.0.0.1');
    });

    it('keeps the WebSocket server’s /publish, /health and /metrics off the public site', async function () {
      for (const route of ['/publish', '/health', '/metrics', '/ws/publish']) {
        const response = await fetch(`${origin}${route}`, { method: route.endsWith('publish') ? 'POST' : 'GET' });
        expect(response.headers.get('x-stub-app'), route).to.equal('1');
      }
    });

    it('a browser-like client with only the session cookie and Origin receives an event through /ws', async function () {
      const browserHeaders = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36' };
      // Four sockets: least_conn spreads them over both nodes, and the event below is published
      // to one node only, so the others receive it through Redis.
      for (let i = 0; i < 4; i++) {
        const client = await TestClient.connect(wsUrl, { path: '/ws', token, via: 'cookie', origin, headers: browserHeaders });
        clients.push(client);
        expect(client.frames[0]).to.include({ type: 'connected', userId });
        await client.mustSubscribe(`feed_${userId}`);
      }
      const perNode = await Promise.all(nodes.map(async (node) => (await health(node.httpUrl))?.body.connections));
      expect(perNode, 'connections per node').to.deep.equal([2, 2]);

      const postId = await publishFeedUpdate(nodes[0]!.httpUrl, `feed_${userId}`);
      for (const client of clients) {
        const push = await client.next((f) => f.type === 'feed_update' && (f.data as { postId?: string }).postId === postId);
        expect(push.channel).to.equal(`feed_${userId}`);
      }
      const pong = await clients[0]!.request({ type: 'ping' });
      expect(pong.type).to.equal('pong');
    });

    it('passes Origin through: a foreign site gets 403', async function () {
      const status = await TestClient.handshakeStatus(wsUrl, { path: '/ws', token, via: 'cookie', origin: 'https://evil.example' });
      expect(status).to.equal(403);
    });

    it('writes no ?token= to the access log: /ws is logged by path only', async function () {
      // A real session token of its own (another iat and jti than the others): found in the log,
      // it could only come from this request.
      const queryToken = await mintSessionToken(userId);
      const userAgent = `nginx-log-test-${Date.now()}`;
      const client = await TestClient.connect(wsUrl, { path: '/ws', token: queryToken, via: 'query', origin, headers: { 'user-agent': userAgent } });
      expect(client.frames[0], 'authenticated through nginx with ?token=').to.include({ type: 'connected', userId });
      client.close();
      await client.closed;
      // nginx writes the line when the proxied connection ends.
      const line = await until(
        'the access log line of the /ws connection',
        async () => (await prefix.accessLog('fonana-ws.access.log')).split('\n').find((l) => l.includes(userAgent)),
        5_000,
      );
      const log = await prefix.accessLog('fonana-ws.access.log');
      expect(log, 'access log').not.to.include(queryToken);
      expect(log, 'access log').not.to.include('token=');
      expect(prefix.log(), 'error log').not.to.include(queryToken);
      expect(line).to.match(/"GET \/ws HTTP\/1\.1" 101 /);
    });

    it('passes auth failures through: a bad cookie is closed with 4001', async function () {
      const client = TestClient.open(wsUrl, { path: '/ws', token: 'not-a-session', via: 'cookie', origin });
      expect((await client.closed).code).to.equal(4001);
    });

    it('the test client passes through nginx over wss:// (the __Secure- cookie of an https site)', async function () {
      // As against a deployment: POST /publish is not public, so it goes to a node directly.
      const result = await run(
        process.execPath,
        [tsxBin, path.join(repoRoot, 'scripts/test-client/main.ts'), '--url', `wss://127.0.0.1:${tlsPort}/ws`, '--email', email, '--publish-url', nodes[1]!.httpUrl],
        {
          cwd: repoRoot,
          env: cleanEnv({
            NO_COLOR: '1',
            NODE_EXTRA_CA_CERTS: certificate,
            NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
            DATABASE_URL: testDatabaseUrl(),
            WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
            REDIS_URL: undefined,
          }),
          timeoutMs: 60_000,
        },
      );
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.match(/token via cookie, Origin https:\/\/127\.0\.0\.1:\d+/);
      expect(result.stdout).to.match(/published event is delivered .*HTTP 202.*PASS/);
    });
  });
});
