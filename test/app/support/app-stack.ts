/**
 * The whole stack a purchase or a tip goes through, for the suites that test them: the real app
 * (`next start` of the e2e build), the real WebSocket server (Redis broker, this suite's own
 * prefix) and an outbox relay publishing through the same Redis, all against the run's scratch
 * database. Browsers sign in through next-auth's credentials flow (auth-flow.ts); sockets open
 * with the browser's session cookie, as behind nginx. `stop()` ends every process it started.
 *
 * The relay runs without its scheduled jobs (SCHEDULED_JOBS=off): the job suites run them
 * themselves, and a job running by itself in the middle of another test would be noise.
 */
import { createPrismaClient, type PrismaClient } from '../../../lib/db/prisma-client.ts';
import { TestClient } from '../../../websocket-server/test/support/client.ts';
import { startServer, type ServerProcess } from '../../../websocket-server/test/support/server-process.ts';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../../support/env.ts';
import { ensureAppBuilt, startApp, type AppProcess } from '../../e2e/support/next-app.ts';
import { Browser } from './auth-flow.ts';
import { startRelay, type RelayProcess } from './outbox-relay.ts';

export interface AppStackOptions {
  /** Redis channel prefix suffix, one per suite. */
  name: string;
  /** Extra environment of the app (WS_PUBLIC_URL for a browser, …). */
  appEnv?: Record<string, string>;
  /** Extra environment of the WebSocket server (WS_PORT for a browser, …). */
  wsEnv?: Record<string, string>;
}

export class AppStack {
  prisma!: PrismaClient;
  ws!: ServerProcess;
  app!: AppProcess;
  relay!: RelayProcess;
  readonly #clients: TestClient[] = [];

  private constructor() {}

  static async start(options: AppStackOptions): Promise<AppStack> {
    const stack = new AppStack();
    try {
      await ensureAppBuilt();
      const prefix = testRedisPrefix(`${options.name}:`);
      stack.prisma = createPrismaClient(testDatabaseUrl(), { poolMax: 3 });
      stack.ws = await startServer({ env: { REDIS_CHANNEL_PREFIX: prefix, LOG_LEVEL: 'info', ...options.wsEnv } });
      stack.app = await startApp({
        DATABASE_URL: testDatabaseUrl(),
        DATABASE_POOL_MAX: '4',
        NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
        REDIS_URL: testRedisUrl(),
        REDIS_CHANNEL_PREFIX: prefix,
        WS_PUBLISH_URL: stack.ws.httpUrl,
        WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
        ...options.appEnv,
      });
      stack.relay = await startRelay({ REDIS_URL: testRedisUrl(), REDIS_CHANNEL_PREFIX: prefix, SCHEDULED_JOBS: 'off' });
      return stack;
    } catch (error) {
      await stack.stop();
      throw error;
    }
  }

  async browserOf(user: { email: string }): Promise<Browser> {
    const browser = new Browser(this.app.url);
    await browser.signIn(user.email);
    return browser;
  }

  /** A socket with the browser's session cookie, subscribed to `channels`. */
  async socket(browser: Browser, ...channels: string[]): Promise<TestClient> {
    const client = await TestClient.connect(this.ws.url, { token: browser.sessionToken!, via: 'cookie' });
    this.#clients.push(client);
    for (const channel of channels) await client.mustSubscribe(channel);
    return client;
  }

  failedLogs(): string {
    return (
      `      app log (tail):\n${this.app?.log().slice(-2500)}\n      server log (tail):\n${this.ws?.log().slice(-2500)}` +
      `\n      relay log (tail):\n${this.relay?.log().slice(-2500)}`
    );
  }

  async stop(): Promise<void> {
    for (const client of this.#clients) client.close();
    await this.app?.stop();
    await this.relay?.stop();
    await this.ws?.stop();
    await this.prisma?.$disconnect();
  }
}
