/**
 * Starts the real WebSocket server (`websocket-server/src/main.ts`) as a child process on a free
 * port, and stops it. Every test that starts one stops it in `after`/`afterEach`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl, testRedisPrefix, testRedisUrl, TEST_NEXTAUTH_SECRET, TEST_PUBLISH_SECRET } from '../../../test/support/env.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface ServerProcess {
  readonly port: number;
  readonly url: string;
  readonly httpUrl: string;
  readonly child: ChildProcess;
  /** Everything the server wrote to stderr (its log), for assertions and failure messages. */
  readonly log: () => string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  /** 'redis' (default) uses the test run's Redis and prefix; 'memory' leaves REDIS_URL unset. */
  broker?: 'redis' | 'memory';
  env?: Record<string, string | undefined>;
}

export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    WS_PORT: '0',
    WS_HOST: '127.0.0.1',
    DATABASE_URL: testDatabaseUrl(),
    NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
    WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET,
    REDIS_URL: options.broker === 'memory' ? undefined : testRedisUrl(),
    REDIS_CHANNEL_PREFIX: testRedisPrefix('ws:'),
    LOG_LEVEL: 'debug',
    ...options.env,
  };
  const child = fork(MAIN, [], {
    env: env as NodeJS.ProcessEnv,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${log}`)), 20_000);
    child.on('message', (message: unknown) => {
      if (typeof message === 'object' && message !== null && (message as { type?: string }).type === 'listening') {
        clearTimeout(timer);
        resolve((message as { port: number }).port);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });

  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    child,
    log: () => log,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
