/**
 * Fan-out benchmark: N authenticated clients on one `post_` channel of a real server process,
 * M events published through Redis by a separate client. Prints handshake rate, delivery
 * throughput, end-to-end latency percentiles and the server's memory.
 *
 *   npx tsx bench/fanout.ts [--clients 2000] [--events 200] [--rate 100] [--broker redis|memory]
 *
 * It creates and drops its own scratch database and Redis prefix, like the tests. The clients
 * live in this one process, so at high counts the client side's own CPU is part of the latency.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { TEST_PUBLISH_SECRET } from '../test/support/env.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '2000' },
    events: { type: 'string', default: '200' },
    rate: { type: 'string', default: '100' },
    broker: { type: 'string', default: 'redis' },
  },
});
const CLIENTS = Number(values.clients);
const EVENTS = Number(values.events);
const RATE = Number(values.rate);
const BROKER = values.broker === 'memory' ? 'memory' : 'redis';

const database = await createScratchDatabase();
process.env.TEST_DATABASE_URL = database.url;
process.env.TEST_REDIS_URL ??= 'redis://127.0.0.1:6379';
process.env.TEST_REDIS_PREFIX = `bench:${randomBytes(6).toString('hex')}:`;

// Imported after the environment is set: these read it.
const { startServer } = await import('../websocket-server/test/support/server-process.ts');
const { mintSessionToken } = await import('../websocket-server/test/support/tokens.ts');
const { Fixtures } = await import('../websocket-server/test/support/fixtures.ts');

const fixtures = new Fixtures();
const server = await startServer({ broker: BROKER, env: { LOG_LEVEL: 'warn', CLIENT_FRAME_BURST: '1000' } });
const redis = new Redis(process.env.TEST_REDIS_URL);
const sockets: WebSocket[] = [];

try {
  const creator = await fixtures.creator();
  const post = await fixtures.post(creator.id);
  const user = await fixtures.user();
  const token = await mintSessionToken(user.id);
  const channel = `post_${post.id}`;

  const baseline = await serverStats(server.httpUrl);
  const latencies: number[] = [];
  let received = 0;
  const connectStarted = performance.now();
  const BATCH = 200;
  for (let i = 0; i < CLIENTS; i += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, CLIENTS - i) }, () => connectAndSubscribe(server.url, token, channel, (sentAt) => {
        received++;
        latencies.push(Date.now() - sentAt);
      })),
    );
  }
  const connectSeconds = (performance.now() - connectStarted) / 1000;

  const publish = async (data: Record<string, unknown>) => {
    const event = { type: 'post_liked', data: { postId: post.id, userId: user.id, likesCount: 1, ...data } };
    if (BROKER === 'redis') await redis.publish(`${process.env.TEST_REDIS_PREFIX}ws:${channel}`, JSON.stringify(event));
    else
      await fetch(`${server.httpUrl}/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_PUBLISH_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel, ...event }),
      });
  };

  const connected = await serverStats(server.httpUrl);
  const expected = CLIENTS * EVENTS;
  const publishStarted = performance.now();
  for (let i = 0; i < EVENTS; i++) {
    await publish({ sentAt: Date.now() });
    const due = publishStarted + ((i + 1) * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const deadline = Date.now() + 30_000;
  while (received < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const deliverSeconds = (performance.now() - publishStarted) / 1000;

  const done = await serverStats(server.httpUrl);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];

  console.log(`broker                ${BROKER}`);
  console.log(`clients               ${CLIENTS} (connected + subscribed in ${connectSeconds.toFixed(2)} s, ${(CLIENTS / connectSeconds).toFixed(0)}/s)`);
  console.log(`events                ${EVENTS} at ${RATE}/s on one channel`);
  console.log(`deliveries            ${received} of ${expected}${received < expected ? '  (INCOMPLETE)' : ''}`);
  console.log(`delivery rate         ${(received / deliverSeconds).toFixed(0)} frames/s over ${deliverSeconds.toFixed(2)} s`);
  console.log(`latency publish→recv  p50 ${pct(50)} ms, p95 ${pct(95)} ms, p99 ${pct(99)} ms, max ${latencies.at(-1)} ms`);
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`server RSS            ${mib(baseline.rss)} idle, ${mib(connected.rss)} with clients (+${((connected.rss - baseline.rss) / CLIENTS / 1024).toFixed(1)} KiB per connection, garbage included: see bench/memory.ts), ${mib(done.rss)} after`);
  console.log(`server JS heap used    ${mib(baseline.heap)} idle, ${mib(connected.heap)} with clients (+${((connected.heap - baseline.heap) / CLIENTS / 1024).toFixed(1)} KiB per connection before GC)`);
  console.log(`server CPU            ${((done.cpu - connected.cpu) * 1e6 / Math.max(1, received)).toFixed(2)} µs per delivered frame (${(done.cpu - connected.cpu).toFixed(2)} s CPU for the publish phase)`);
} finally {
  for (const socket of sockets) socket.terminate();
  redis.disconnect();
  await server.stop();
  await fixtures.close();
  await database.drop();
}

async function serverStats(httpUrl: string): Promise<{ rss: number; heap: number; cpu: number }> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: read('process_resident_memory_bytes'), heap: read('nodejs_heap_size_used_bytes'), cpu: read('process_cpu_seconds_total') };
}

function connectAndSubscribe(url: string, token: string, channel: string, onEvent: (sentAt: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    sockets.push(ws);
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { type: string; data?: { sentAt?: number } };
      if (frame.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', channel, id: 1 }));
      else if (frame.type === 'subscribed') resolve();
      else if (frame.type === 'error') reject(new Error(JSON.stringify(frame)));
      else if (frame.type === 'post_liked' && frame.data?.sentAt) onEvent(frame.data.sentAt);
    });
  });
}
