/**
 * Soak: many clients, a steady publisher, a Redis restart and a rolling server reload in the
 * middle, and a count of every event at the end. A script, not a test (outside npm test):
 *
 *   npx tsx bench/soak.ts [--clients 200] [--procs 2] [--channels 4] [--rate 40] [--seconds 40]
 *
 * What runs: a redis-server of its own on a free port (no persistence, so the restart loses the
 * history, as a crashed Redis without AOF would), a scratch database on the local PostgreSQL
 * (created and dropped, like the tests), two WebSocket server nodes on that Redis, and the
 * clients spread over `--procs` child processes (the drills' reference client,
 * test/drills/support/drill-client.ts: positions, `since` on every resubscribe, reloads on
 * `recovered: false`, jittered backoff, dedup by id), each on one of `--channels` post_
 * channels, half starting on each node. One publisher per channel (publishWithHistory, retried
 * until Redis takes it, as the outbox relay does) at `--rate` events per second in total.
 *
 * Timeline (of `--seconds`): at 25 % Redis is shut down (`shutdown nosave`) for 2 s and started
 * again on the same port; at 55 % node A is stopped (SIGTERM, clients closed with 1001) and
 * started again, then node B; at 85 % the publishers stop; then up to 20 s for clients to settle.
 *
 * What it prints, over all clients:
 * - published: events acknowledged by Redis (one per sequence number; a retry that went
 *   through twice is the same event, same id);
 * - delivered: (client, event) pairs the client applied, of published × subscribers;
 * - recovered: resubscribes answered `recovered: true` (the replay brought what was missed);
 * - reloaded: resubscribes answered `recovered: false` (the history was gone; a real client
 *   re-reads its state there);
 * - covered by a reload: events a client did not receive because a later reload covered them;
 * - lost: an event published with an offset that a client never received and whose channel it
 *   did not reload after: no reload whose position is in the event's epoch at or past its
 *   offset, and, for an event of an earlier epoch, no reload after its acknowledgement
 *   (test/drills/support/ledger.ts). Must be 0;
 * - duplicates after dedup: events a client applied twice though it drops repeated ids (the
 *   same sequence number under two ids). Must be 0;
 * - position violations: pushes that did not follow the client's position (a gap, or another
 *   epoch, without a `subscribed` in between);
 * - recovery latency: from a socket's reconnect to its last recovered event.
 * Exits 1 when lost or duplicates are not 0.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DrillClient } from '../test/drills/support/drill-client.ts';
import { account, recoveryLatencies, settled, summarize, type ClientAccount } from '../test/drills/support/ledger.ts';
import type { PublishedEvent } from '../test/drills/support/publisher.ts';

const SELF = fileURLToPath(import.meta.url);

type WorkerInit = { urls: string[]; tokens: string[]; channels: string[]; count: number; first: number };
type WorkerResult = {
  clients: number;
  published: number;
  delivered: number;
  coveredByReload: number;
  lost: number;
  duplicatesAfterDedup: number;
  rawDuplicates: number;
  outOfOrder: number;
  violations: number;
  reloaded: number;
  recovered: number;
  resubscribeNotices: number;
  reconnects: number;
  failedAttempts: number;
  closeCodes: Record<string, number>;
  latencies: number[];
  lostSamples: string[];
};

if (process.argv.includes('--worker')) await worker();
else await main();

// ---- a client process ----------------------------------------------------------------------

async function worker(): Promise<void> {
  const init = await new Promise<WorkerInit>((resolve) => process.once('message', (m) => resolve(m as WorkerInit)));
  const clients: Array<{ client: DrillClient; channel: string }> = [];
  for (let i = 0; i < init.count; i++) {
    const n = init.first + i;
    const channel = init.channels[n % init.channels.length]!;
    // Half start on each node; a reconnect tries the next one.
    const urls = n % 2 === 0 ? init.urls : [...init.urls].reverse();
    const client = new DrillClient({ urls, token: init.tokens[n % init.tokens.length]!, channels: [channel], name: `c${n}`, backoff: { baseMs: 250, capMs: 3_000 } });
    clients.push({ client, channel });
  }
  for (let i = 0; i < clients.length; i += 50) await Promise.all(clients.slice(i, i + 50).map(({ client }) => client.start(30_000)));
  process.send!({ type: 'ready' });

  const published = await new Promise<PublishedEvent[]>((resolve) =>
    process.on('message', (m: { type: string; published?: PublishedEvent[] }) => {
      if (m.type === 'collect') resolve(m.published!);
    }),
  );
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !clients.every(({ client, channel }) => client.allSubscribed && settled(client, channel, published))) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const accounts: ClientAccount[] = clients.map(({ client, channel }) => account(client, channel, published));
  const sum = (f: (a: ClientAccount) => number) => accounts.reduce((s, a) => s + f(a), 0);
  const flags = clients.flatMap(({ client }) => client.reconnects.flatMap((r) => r.recovered));
  const closeCodes: Record<string, number> = {};
  for (const { client } of clients) for (const code of client.closeCodes) closeCodes[code] = (closeCodes[code] ?? 0) + 1;
  const result: WorkerResult = {
    clients: clients.length,
    published: published.length,
    delivered: sum((a) => a.delivered),
    coveredByReload: sum((a) => a.coveredByReload),
    lost: sum((a) => a.lost.length),
    duplicatesAfterDedup: sum((a) => a.duplicatesAfterDedup),
    rawDuplicates: sum((a) => a.rawDuplicates),
    outOfOrder: sum((a) => a.outOfOrder),
    violations: sum((a) => a.violations.length),
    reloaded: sum((a) => a.reloads.length),
    // Resubscribes after a reconnect or a resubscribe notice, answered recovered: true.
    recovered: flags.filter(Boolean).length,
    resubscribeNotices: sum((a) => a.resubscribeNotices),
    reconnects: clients.reduce((n, { client }) => n + client.reconnects.length, 0),
    failedAttempts: clients.reduce((n, { client }) => n + client.failedAttempts, 0),
    closeCodes,
    latencies: recoveryLatencies(clients.map(({ client }) => client)),
    lostSamples: accounts
      .filter((a) => a.lost.length > 0)
      .slice(0, 3)
      .map((a) => `${a.client}: ${a.lost.length} lost, first #${a.lost[0]!.seq} (${a.lost[0]!.phase}); ${a.violations[0] ?? ''}`),
  };
  for (const { client } of clients) client.stop();
  process.send!({ type: 'result', result });
  process.once('message', () => process.exit(0));
}

// ---- the conductor -------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '200' },
      procs: { type: 'string', default: '2' },
      channels: { type: 'string', default: '4' },
      rate: { type: 'string', default: '40' },
      seconds: { type: 'string', default: '40' },
    },
  });
  const CLIENTS = Number(values.clients);
  const PROCS = Math.max(1, Number(values.procs));
  const CHANNELS = Math.max(1, Number(values.channels));
  const RATE = Number(values.rate);
  const SECONDS = Number(values.seconds);
  const log = (line: string) => process.stdout.write(`[soak +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
  let t0 = Date.now();

  const { createScratchDatabase } = await import('../test/support/scratch-database.ts');
  const database = await createScratchDatabase();
  process.env.TEST_DATABASE_URL = database.url;
  process.env.TEST_REDIS_PREFIX = `soak:${randomBytes(6).toString('hex')}:`;
  // Read the environment set above.
  const { OwnRedis } = await import('../test/drills/support/own-redis.ts');
  const { SteadyPublisher, sleep } = await import('../test/drills/support/publisher.ts');
  const { startServer } = await import('../websocket-server/test/support/server-process.ts');
  const { mintSessionToken } = await import('../websocket-server/test/support/tokens.ts');
  const { Fixtures } = await import('../websocket-server/test/support/fixtures.ts');
  const { freePort } = await import('../test/support/ports.ts');

  const redis = await OwnRedis.start();
  const fixtures = new Fixtures();
  const ports = [await freePort(), await freePort()];
  const prefix = 'ws:';
  const nodeEnv = (port: number) => ({
    env: {
      WS_PORT: String(port),
      REDIS_URL: redis.url,
      REDIS_CHANNEL_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      CONNECT_RATE_PER_IP: '10000',
      CONNECT_BURST_PER_IP: '10000',
      SUBSCRIBE_BURST_PER_USER: '200',
      SUBSCRIBES_PER_SECOND_PER_USER: '100',
    },
  });
  const nodes = [await startServer(nodeEnv(ports[0]!)), await startServer(nodeEnv(ports[1]!))];
  const workers: ReturnType<typeof fork>[] = [];
  const publishers: InstanceType<typeof SteadyPublisher>[] = [];
  let exitCode = 0;
  try {
    const creator = await fixtures.creator();
    const posts = await Promise.all(Array.from({ length: CHANNELS }, () => fixtures.post(creator.id)));
    const channels = posts.map((p) => `post_${p.id}`);
    const users = await Promise.all(Array.from({ length: Math.max(1, Math.ceil(CLIENTS / 5)) }, (_, i) => fixtures.user({ name: `soak${i}` })));
    const tokens = await Promise.all(users.map((u) => mintSessionToken(u.id, { maxAgeSeconds: 3600 })));
    const urls = ports.map((p) => `ws://127.0.0.1:${p}`);

    t0 = Date.now();
    const perProc = Math.ceil(CLIENTS / PROCS);
    const ready: Promise<void>[] = [];
    for (let p = 0; p < PROCS; p++) {
      const count = Math.min(perProc, CLIENTS - p * perProc);
      if (count <= 0) break;
      const child = fork(SELF, ['--worker'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push(child);
      ready.push(new Promise((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`client process exited with ${code} before it was ready`)));
      }));
      child.send({ urls, tokens, channels, count, first: p * perProc } satisfies WorkerInit);
    }
    await Promise.all(ready);
    log(`${CLIENTS} clients in ${workers.length} processes on 2 nodes, ${CHANNELS} post channels; publishing ${RATE}/s`);

    t0 = Date.now();
    for (const [i, channel] of channels.entries()) {
      const publisher = new SteadyPublisher({ redisUrl: redis.url, prefix, channel, postId: posts[i]!.id, rate: RATE / CHANNELS, idPrefix: `soak${i}-${randomBytes(3).toString('hex')}` });
      await publisher.ready();
      publishers.push(publisher);
    }
    for (const publisher of publishers) publisher.start();
    const at = (fraction: number) => sleep(Math.max(0, t0 + fraction * SECONDS * 1000 - Date.now()));
    const phase = (name: string) => publishers.forEach((p) => (p.phase = name));

    await at(0.25);
    await redis.kill();
    phase('redis down');
    log('Redis shut down (nosave)');
    await sleep(2_000);
    await redis.restart();
    phase('after redis');
    log('Redis started again, empty');

    await at(0.55);
    for (const [i, name] of ['A', 'B'].entries()) {
      phase(`reload ${name}`);
      await nodes[i]!.stop('SIGTERM');
      log(`node ${name} stopped (SIGTERM)`);
      nodes[i] = await startServer(nodeEnv(ports[i]!));
      log(`node ${name} started again`);
      await sleep(1_000);
    }
    phase('after reload');

    await at(0.85);
    await Promise.all(publishers.map((p) => p.stop()));
    const published = publishers.flatMap((p) => p.published);
    log(`publishers stopped: ${published.length} events acknowledged (${publishers.reduce((n, p) => n + p.failedAttempts, 0)} failed attempts retried)`);

    const results = await Promise.all(
      workers.map(
        (child) =>
          new Promise<WorkerResult>((resolve) => {
            child.on('message', (m: { type: string; result?: WorkerResult }) => {
              if (m.type === 'result') resolve(m.result!);
            });
            child.send({ type: 'collect', published });
          }),
      ),
    );
    const total = <K extends keyof WorkerResult>(key: K) => results.reduce((s, r) => s + (r[key] as number), 0);
    const subscribersPerChannel = (c: number) => Array.from({ length: CLIENTS }, (_, n) => n).filter((n) => n % CHANNELS === c).length;
    const expected = channels.reduce((s, channel, c) => s + published.filter((e) => e.channel === channel).length * subscribersPerChannel(c), 0);
    const closeCodes: Record<string, number> = {};
    for (const r of results) for (const [code, n] of Object.entries(r.closeCodes)) closeCodes[code] = (closeCodes[code] ?? 0) + n;
    const lines: Array<[string, string | number]> = [
      ['clients', `${CLIENTS} (${workers.length} processes, 2 nodes, ${CHANNELS} channels)`],
      ['published', published.length],
      ['delivered', `${total('delivered')} of ${expected}`],
      ['recovered (recovered: true)', total('recovered')],
      ['reloaded (recovered: false)', total('reloaded')],
      ['covered by a reload', total('coveredByReload')],
      ['resubscribe notices', total('resubscribeNotices')],
      ['lost', total('lost')],
      ['duplicates after dedup', total('duplicatesAfterDedup')],
      ['raw duplicates dropped', total('rawDuplicates')],
      ['out of order', total('outOfOrder')],
      ['position violations', total('violations')],
      ['reconnects', `${total('reconnects')} (failed attempts ${total('failedAttempts')}); close codes ${JSON.stringify(closeCodes)}`],
      ['recovery latency', summarize(results.flatMap((r) => r.latencies))],
    ];
    const width = Math.max(...lines.map(([k]) => k.length));
    process.stdout.write(`\nsoak result\n${lines.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`);
    for (const sample of results.flatMap((r) => r.lostSamples)) process.stdout.write(`  ! ${sample}\n`);
    if (total('lost') !== 0 || total('duplicatesAfterDedup') !== 0) exitCode = 1;
    for (const child of workers) child.send({ type: 'exit' });
  } catch (error) {
    process.stderr.write(`soak failed: ${(error as Error).stack}\n`);
    exitCode = 1;
  } finally {
    for (const publisher of publishers) await publisher.close();
    for (const child of workers) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    await fixtures.close();
    await database.drop();
  }
  process.exit(exitCode);
}
