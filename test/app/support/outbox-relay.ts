/**
 * The outbox relay (scripts/outbox-relay.ts) as a real child process, for tests that start the
 * app and need what it enqueues to be published: give it the same DATABASE_URL and either the
 * Redis of the WebSocket server (REDIS_URL + REDIS_CHANNEL_PREFIX) or its HTTP address
 * (WS_PUBLISH_URL + WS_PUBLISH_SECRET). Every test that starts one stops it.
 *
 * Its scheduled jobs are off unless a test turns them on (SCHEDULED_JOBS: 'on', as the job
 * suites do): the scratch database is shared by every suite of the run, and a relay's
 * subscription-expiry job would otherwise expire what another suite left behind and publish an
 * `entitlement_changed` of its own, in the middle of a test that counts what the relay
 * published (seen in CI: 501 published where the test wrote 500).
 *
 *   relay = await startRelay({ WS_PUBLISH_URL: ws.httpUrl, WS_PUBLISH_SECRET: TEST_PUBLISH_SECRET });
 *   …
 *   await relay.stop();
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl } from '../../support/env.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('../../../scripts/outbox-relay.ts', import.meta.url));

export interface RelayProcess {
  readonly child: ChildProcess;
  /** Everything it wrote (JSON log lines). */
  readonly log: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (the batch in flight finishes), SIGKILL after 10 s. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The counters it logged when it stopped ("outbox relay stopping"), once it has. */
  finalCounts(): Record<string, number> | null;
}

/**
 * Starts a relay and resolves once it listens (its 'ready' message). Unless `env` says
 * otherwise: this run's scratch database, no REDIS_URL, a 5 s poll, 1 s maximum backoff, no
 * scheduled jobs.
 */
export async function startRelay(env: Record<string, string | undefined>, options: { waitReady?: boolean } = {}): Promise<RelayProcess> {
  const child = fork(ENTRY, [], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: '',
      OUTBOX_MAX_BACKOFF_MS: '1000',
      SCHEDULED_JOBS: 'off',
      LOG_LEVEL: 'info',
      ...env,
    } as NodeJS.ProcessEnv,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (options.waitReady ?? true) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the outbox relay was not ready in 20 s:\n${log}`)), 20_000);
      child.on('message', (message: unknown) => {
        if (message === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`the outbox relay exited (${signal ?? code}) before it was ready:\n${log}`));
      });
    });
  }
  return {
    child,
    log: () => log,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    finalCounts() {
      for (const line of log.split('\n').reverse()) {
        if (!line.includes('"outbox relay stopping"')) continue;
        try {
          return JSON.parse(line) as Record<string, number>;
        } catch {
          return null;
        }
      }
      return null;
    },
  };
}
