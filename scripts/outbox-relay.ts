// The outbox relay as a process: `node --import tsx scripts/outbox-relay.ts`. Publishes the
// OutboxEvent rows the app writes in its transactions (lib/realtime/outbox-relay.ts) through
// Redis (REDIS_URL) or the WebSocket server's POST /publish (WS_PUBLISH_URL + WS_PUBLISH_SECRET),
// the same choice as the app's. `npm start` forks it; PM2 runs it as `fonana-outbox`. Run as
// many as you like: they share the work (FOR UPDATE SKIP LOCKED) and never publish a row twice
// in normal operation.
//
// Environment: DATABASE_URL (required), REDIS_CLUSTER_NODES (host:port,…; takes precedence
// over REDIS_URL), REDIS_URL, REDIS_CHANNEL_PREFIX (ws:), WS_PUBLISH_URL
// (http://127.0.0.1:3002), WS_PUBLISH_SECRET (required without either), OUTBOX_BATCH_SIZE
// (100), OUTBOX_POLL_INTERVAL_MS (5000), OUTBOX_RETENTION_MS (3600000), OUTBOX_MAX_BACKOFF_MS
// (30000), OUTBOX_RELAY_NAME (outbox-relay:<pid>), LOG_LEVEL (debug for a line per batch).
// Scheduled jobs (lib/jobs/, one run of each at a time across relays by an advisory lock):
// SUBSCRIPTION_EXPIRY_INTERVAL_MS (60000), NOTIFICATION_RETENTION_INTERVAL_MS (3600000),
// NOTIFICATION_RETENTION_DAYS (30), SCHEDULED_JOBS (on; off runs the relay alone).
// OUTBOX_RELAY_DRILL=crash-before-commit is for fault tests only: the process kills itself
// (SIGKILL) after publishing its first non-empty batch and before committing it.
//
// With an IPC channel (forked by npm start, or PM2 with wait_ready) it sends 'ready' once it
// listens, and stops when that parent goes away. SIGTERM/SIGINT: the batch in flight finishes,
// then the connections close and it exits 0.
import { z } from 'zod';
import { log } from '../lib/log.ts';
import { clusterNodesSchema } from '../lib/realtime/cluster-nodes.ts';
import { createTransport } from '../lib/realtime/create-transport.ts';
import { OutboxRelay } from '../lib/realtime/outbox-relay.ts';
import { startScheduledJobs } from '../lib/jobs/index.ts';

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);
const positiveInt = (fallback: number) => z.preprocess(emptyToUndefined, z.coerce.number().int().positive().default(fallback));

const schema = z
  .object({
    DATABASE_URL: z.string().min(1, 'DATABASE_URL is required (postgresql://…)'),
    REDIS_URL: z.preprocess(emptyToUndefined, z.string().optional()),
    REDIS_CLUSTER_NODES: clusterNodesSchema,
    REDIS_CHANNEL_PREFIX: z.preprocess(emptyToUndefined, z.string().default('ws:')),
    WS_PUBLISH_URL: z.preprocess(emptyToUndefined, z.url().default('http://127.0.0.1:3002')),
    WS_PUBLISH_SECRET: z.preprocess(emptyToUndefined, z.string().optional()),
    OUTBOX_BATCH_SIZE: positiveInt(100),
    OUTBOX_POLL_INTERVAL_MS: positiveInt(5_000),
    OUTBOX_RETENTION_MS: positiveInt(3_600_000),
    OUTBOX_MAX_BACKOFF_MS: positiveInt(30_000),
    OUTBOX_RELAY_NAME: z.preprocess(emptyToUndefined, z.string().default(`outbox-relay:${process.pid}`)),
    SUBSCRIPTION_EXPIRY_INTERVAL_MS: positiveInt(60_000),
    NOTIFICATION_RETENTION_INTERVAL_MS: positiveInt(3_600_000),
    NOTIFICATION_RETENTION_DAYS: positiveInt(30),
    SCHEDULED_JOBS: z.preprocess(emptyToUndefined, z.enum(['on', 'off']).default('on')),
    OUTBOX_RELAY_DRILL: z.preprocess(emptyToUndefined, z.enum(['crash-before-commit']).optional()),
  })
  .refine((e) => e.REDIS_CLUSTER_NODES.length > 0 || e.REDIS_URL || e.WS_PUBLISH_SECRET, { message: 'set REDIS_CLUSTER_NODES or REDIS_URL, or WS_PUBLISH_SECRET for POST /publish', path: ['WS_PUBLISH_SECRET'] });

const parsed = schema.safeParse(process.env);
if (!parsed.success) {
  process.stderr.write(`outbox relay: invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}\n`).join('')}`);
  process.exit(78); // EX_CONFIG, like the WebSocket server
}
const config = parsed.data;

const transport = createTransport({
  redisClusterNodes: config.REDIS_CLUSTER_NODES,
  redisUrl: config.REDIS_URL,
  redisChannelPrefix: config.REDIS_CHANNEL_PREFIX,
  publishUrl: config.WS_PUBLISH_URL,
  publishSecret: config.WS_PUBLISH_SECRET,
});

const relay = new OutboxRelay({
  databaseUrl: config.DATABASE_URL,
  transport,
  batchSize: config.OUTBOX_BATCH_SIZE,
  pollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
  retentionMs: config.OUTBOX_RETENTION_MS,
  maxBackoffMs: config.OUTBOX_MAX_BACKOFF_MS,
  name: config.OUTBOX_RELAY_NAME,
  ...(config.OUTBOX_RELAY_DRILL === 'crash-before-commit'
    ? {
        beforeCommit: ({ published }: { published: string[] }) => {
          if (published.length === 0) return;
          log.warn('outbox relay drill: published, now dying before the commit', { relay: config.OUTBOX_RELAY_NAME, outboxIds: published });
          process.kill(process.pid, 'SIGKILL');
        },
      }
    : {}),
});

const jobs =
  config.SCHEDULED_JOBS === 'on'
    ? startScheduledJobs({
        databaseUrl: config.DATABASE_URL,
        subscriptionExpiryIntervalMs: config.SUBSCRIPTION_EXPIRY_INTERVAL_MS,
        notificationRetentionIntervalMs: config.NOTIFICATION_RETENTION_INTERVAL_MS,
        notificationRetentionDays: config.NOTIFICATION_RETENTION_DAYS,
        name: config.OUTBOX_RELAY_NAME,
        log,
      })
    : undefined;

let stopping = false;
async function stop(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info('outbox relay stopping', { relay: config.OUTBOX_RELAY_NAME, why, ...relay.counts });
  // A batch waits at most for one publish timeout per row before it fails; never hang for ever.
  setTimeout(() => process.exit(1), 10_000).unref();
  await Promise.all([relay.stop(), jobs?.stop()]);
  await transport.close();
  process.exit(0);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(signal));
process.on('message', (message) => {
  if (message === 'shutdown') void stop('shutdown message');
});
if (process.send) process.on('disconnect', () => void stop('parent process disconnected'));

await relay.start();
process.send?.('ready');
process.send?.({ type: 'relay-ready', listening: relay.listening });
