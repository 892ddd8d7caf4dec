/**
 * What one idle subscribed connection keeps alive in the server, by kind of object: writes a
 * heap snapshot of the real server (Redis broker, PostgreSQL) before and after N connections,
 * each of its own user, authenticated with a next-auth token and subscribed to its own
 * `notifications_` channel (bench/compare's idle scenario), and prints the difference of
 * object counts and self sizes per connection, largest first, with RSS and heap after a GC.
 *
 *   npx tsx bench/heap-census.ts [--connections 1000] [--top 40]
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { TEST_NEXTAUTH_SECRET } from '../test/support/env.ts';

const { values } = parseArgs({
  options: { connections: { type: 'string', default: '1000' }, top: { type: 'string', default: '40' }, retainers: { type: 'string', default: '(array),Object,closure ' }, keep: { type: 'boolean', default: false } },
});
/** Kinds whose growth is also broken down by what holds them (`Holder.edge`). */
const EXPLAIN = new Set(values.retainers.split(','));
const N = Number(values.connections);

const database = await createScratchDatabase();
process.env.TEST_DATABASE_URL = database.url;
const { Fixtures } = await import('../websocket-server/test/support/fixtures.ts');
const { mintSessionToken } = await import('../websocket-server/test/support/tokens.ts');
const fixtures = new Fixtures();
const snapshotDir = join(tmpdir(), `heap-census-${randomBytes(4).toString('hex')}`);
const server = fork(fileURLToPath(new URL('./support/server-with-gc.ts', import.meta.url)), [], {
  execArgv: ['--expose-gc', '--import', 'tsx'],
  stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  env: {
    ...process.env,
    WS_PORT: '0',
    WS_HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    NEXTAUTH_SECRET: TEST_NEXTAUTH_SECRET,
    REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_CHANNEL_PREFIX: `census:${randomBytes(4).toString('hex')}:`,
    LOG_LEVEL: 'warn',
    MAX_CONNECTIONS_PER_USER: '100000',
    CONNECT_RATE_PER_IP: '1000000',
    CONNECT_BURST_PER_IP: '1000000',
    MAX_PENDING_HANDSHAKES: '2000',
    HEAP_SNAPSHOT_DIR: snapshotDir,
  },
});
let stderr = '';
server.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
const sockets: WebSocket[] = [];

type Census = Map<string, { count: number; size: number }>;
function census(file: string): Census {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { meta } = snapshot.snapshot;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => fields.indexOf(f)) as [number, number, number, number];
  const edgeFields = meta.edge_fields.length;
  const [edgeTypeAt, edgeNameAt, edgeToAt] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const edgeTypes = meta.edge_types[0];
  const keyOf = (i: number) => {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    const name = snapshot.strings[snapshot.nodes[i + nameAt]!]!;
    return type === 'object' || type === 'closure' ? `${type === 'closure' ? 'closure ' : ''}${name.slice(0, 60)}` : `(${type})`;
  };
  const result: Census = new Map();
  const add = (key: string, size: number) => {
    const entry = result.get(key) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += size;
    result.set(key, entry);
  };
  // The first strong holder of each node, for the kinds to explain.
  const holder = new Map<number, string>();
  let edge = 0;
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const from = keyOf(i);
    for (let e = 0; e < snapshot.nodes[i + edgeCountAt]!; e++, edge += edgeFields) {
      const to = snapshot.edges[edge + edgeToAt]!;
      const edgeType = edgeTypes[snapshot.edges[edge + edgeTypeAt]!]!;
      if (edgeType === 'weak' || holder.has(to) || !EXPLAIN.has(keyOf(to))) continue;
      const label = edgeType === 'element' || edgeType === 'hidden' ? `[${edgeType}]` : String(snapshot.strings[snapshot.edges[edge + edgeNameAt]!]).slice(0, 40);
      holder.set(to, `${from}.${label}`);
    }
  }
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const key = keyOf(i);
    const size = snapshot.nodes[i + sizeAt]!;
    add(key, size);
    if (EXPLAIN.has(key)) add(`    ${key} held by ${holder.get(i) ?? '?'}`, size);
  }
  return result;
}

try {
  const port = await new Promise<number>((resolve) => server.on('message', (m: { type?: string; port?: number }) => m?.type === 'listening' && resolve(m.port!)));
  const tag = randomBytes(4).toString('hex');
  const ids = Array.from({ length: N }, (_, i) => `census${tag}u${i}`);
  await fixtures.prisma.user.createMany({ data: ids.map((id, i) => ({ id, email: `census-${tag}-${i}@test.invalid`, name: `Census ${i}`, passwordHash: 'x' })) });
  const tokens = await Promise.all(ids.map((id) => mintSessionToken(id, { maxAgeSeconds: 3600 })));

  const snap = async (): Promise<{ file: string; rss: number; heapUsed: number }> => {
    const from = stderr.length;
    server.kill('SIGUSR2');
    for (;;) {
      const match = /SNAP (.*)\n/.exec(stderr.slice(from));
      if (match) return JSON.parse(match[1]!) as { file: string; rss: number; heapUsed: number };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const connect = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { headers: { authorization: `Bearer ${tokens[i]}` } });
      sockets.push(ws);
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const frame = JSON.parse(raw.toString()) as { type: string };
        if (frame.type === 'connected') ws.send(JSON.stringify({ type: 'subscribe', channel: `notifications_${ids[i]}` }));
        if (frame.type === 'subscribed') resolve();
      });
    });
  // Warm up (code compiled, pools full) on a few connections that stay open in both snapshots.
  for (let i = 0; i < 20; i++) await connect(i);
  const before = await snap();
  for (let i = 20; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, k) => connect(i + k)));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = await snap();
  const opened = N - 20;
  const a = census(before.file);
  const b = census(after.file);
  const rows = [...b].map(([key, { count, size }]) => ({ key, count: (count - (a.get(key)?.count ?? 0)) / opened, size: (size - (a.get(key)?.size ?? 0)) / opened }));
  console.log(`${opened} connections; per connection: RSS ${((after.rss - before.rss) / opened / 1024).toFixed(1)} KiB, heap after GC ${((after.heapUsed - before.heapUsed) / opened / 1024).toFixed(2)} KiB`);
  console.log('   bytes  objects  kind (per connection, by self size)');
  const print = (list: typeof rows) => {
    for (const row of list.sort((x, y) => y.size - x.size).slice(0, Number(values.top))) console.log(`${row.size.toFixed(0).padStart(8)} ${row.count.toFixed(2).padStart(8)}  ${row.key}`);
  };
  print(rows.filter((row) => !row.key.startsWith(' ')));
  for (const kind of EXPLAIN) {
    console.log(`\n${kind} by holder`);
    print(rows.filter((row) => row.key.startsWith(`    ${kind} held by`)));
  }
} finally {
  for (const socket of sockets) socket.terminate();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await fixtures.close();
  await database.drop();
  if (values.keep) console.log(`snapshots kept in ${snapshotDir}`);
  else rmSync(snapshotDir, { recursive: true, force: true });
}
