/**
 * Memory per connection: opens authenticated connections (each subscribed to one channel) in
 * two equal steps and reads the server's memory after a forced garbage collection at each
 * step; the difference between the steps divided by the step size is the cost of one
 * connection, without the start-up baseline.
 *
 *   npx tsx bench/memory.ts [--step 2000]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { TEST_NEXTAUTH_SECRET } from '../test/support/env.ts';

const { values } = parseArgs({ options: { step: { type: 'string', default: '2000' } } });
const STEP = Number(values.step);
type Memory = { rss: number; heapUsed: number; external: number };

const database = await createScratchDatabase();
process.env.TEST_DATABASE_URL = database.url;
const { Fixtures } = await import('../websocket-server/test/support/fixtures.ts');
const { mintSessionToken } = await import('../websocket-server/test/support/tokens.ts');
const fixtures = new Fixtures();
const server = fork(fileURLToPath(new URL('./support/server-with-gc.ts', import.meta.url)), [], {
  execArgv: ['--expose-gc', '--import', 'tsx'],
  stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  env: { ...process.env, WS_PORT: '0', WS_HOST: '127.0.0.1', DATABASE_URL: database.url, NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET, REDIS_URL: '', LOG_LEVEL: 'warn', CLIENT_FRAME_BURST: '1000' },
});
let stderr = '';
server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
const sockets: WebSocket[] = [];

try {
  const port = await new Promise<number>((resolve) =>
    server.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && resolve(m.port!)),
  );
  const user = await fixtures.user();
  const post = await fixtures.post((await fixtures.creator()).id);
  const token = await mintSessionToken(user.id);

  const readMemory = async (): Promise<Memory> => {
    const from = stderr.length;
    server.kill('SIGUSR2');
    for (;;) {
      const match = /MEM (.*)\n/.exec(stderr.slice(from));
      if (match) return JSON.parse(match[1]!) as Memory;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const connect = () =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { headers: { authorization: `Bearer ${token}` } });
      sockets.push(ws);
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const frame = JSON.parse(raw.toString()) as { type: string };
        if (frame.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', channel: `post_${post.id}` }));
        if (frame.type === 'subscribed') resolve();
      });
    });
  const openStep = async () => {
    for (let i = 0; i < STEP; i += 200) await Promise.all(Array.from({ length: Math.min(200, STEP - i) }, connect));
  };

  const idle = await readMemory();
  await openStep();
  const first = await readMemory();
  await openStep();
  const second = await readMemory();
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  const perConnection = (key: keyof Memory) => `${((second[key] - first[key]) / STEP / 1024).toFixed(1)} KiB`;
  console.log(`connections           0 → ${STEP} → ${2 * STEP}, each subscribed to one channel, after a full GC`);
  console.log(`server RSS            ${mib(idle.rss)} → ${mib(first.rss)} → ${mib(second.rss)}`);
  console.log(`server JS heap used   ${mib(idle.heapUsed)} → ${mib(first.heapUsed)} → ${mib(second.heapUsed)}`);
  console.log(`per connection        RSS ${perConnection('rss')}, heap ${perConnection('heapUsed')}, external ${perConnection('external')}`);
} finally {
  for (const socket of sockets) socket.terminate();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await fixtures.close();
  await database.drop();
}
