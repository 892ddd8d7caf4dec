/**
 * The only wiring point: configuration, logger, database, broker, server, signals.
 *
 * Under PM2 (`wait_ready: true`) the process sends 'ready' once it listens; any parent process
 * with an IPC channel (tests) also receives `{type:'listening', port}` to learn a port chosen
 * with WS_PORT=0.
 */
import { hostname } from 'node:os';
import { SessionVerifier } from './auth/session-verifier.ts';
import type { Broker } from './broker/broker.ts';
import { MemoryBroker } from './broker/memory.ts';
import { RedisBroker } from './broker/redis.ts';
import { RedisClusterBroker } from './broker/redis-cluster.ts';
import { ConfigError, loadConfig } from './config.ts';
import { CachedDirectory } from './data/cached-directory.ts';
import { PrismaDirectory } from './data/prisma-directory.ts';
import { createLogger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { NodeStatsReporter } from './ops/node-stats.ts';
import { MemoryNodeStatsStore, type NodeStatsStore } from './ops/stats-store.ts';
import { RedisNodeStatsStore } from './ops/stats-store-redis.ts';
import { MemoryPresence } from './presence/memory.ts';
import type { Presence } from './presence/presence.ts';
import { RedisPresence } from './presence/redis.ts';
import { RealtimeServer } from './server.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const nodeId = config.nodeId ?? `${hostname()}:${process.pid}`;
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, nodeId });
  const metrics = new Metrics({ collectProcessMetrics: true });
  const directory = new CachedDirectory(
    new PrismaDirectory(config.databaseUrl, {
      poolMax: config.databasePoolMax,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
    }),
    {
      ttlMs: config.accessCacheTtlMs,
      stats: {
        hit: (kind) => metrics.accessCache.inc({ kind, result: 'hit' }),
        miss: (kind) => metrics.accessCache.inc({ kind, result: 'miss' }),
      },
    },
  );
  if (config.allowedOrigins.length === 0) logger.warn('ALLOWED_ORIGINS not set: any Origin is accepted (refused with NODE_ENV=production)');

  let broker: Broker;
  if (config.redisClusterNodes.length > 0) {
    if (config.redisUrl) logger.warn('REDIS_URL ignored: REDIS_CLUSTER_NODES is set');
    const cluster = new RedisClusterBroker({ nodes: config.redisClusterNodes, channelPrefix: config.redisChannelPrefix, logger, nodeId });
    broker = cluster;
    await cluster.ready(2_000).catch((error: Error) => logger.warn('starting before Redis Cluster is ready', { error: error.message }));
  } else if (config.redisUrl) {
    const redis = new RedisBroker({ url: config.redisUrl, channelPrefix: config.redisChannelPrefix, logger, nodeId });
    broker = redis;
    // Start even if Redis is late: ioredis keeps reconnecting, and /health reports it.
    await redis.ready(2_000).catch((error: Error) => logger.warn('starting before Redis is ready', { error: error.message }));
  } else {
    broker = new MemoryBroker();
    logger.info('REDIS_URL not set: in-process broker, single node; publish with POST /publish');
  }

  // Presence lives where the broker does: the same Redis (or Cluster), or this process.
  const presenceOptions = { channelPrefix: config.redisChannelPrefix, ttlMs: config.presenceTtlMs, logger, nodeId };
  let presence: Presence = new MemoryPresence({ ttlMs: config.presenceTtlMs });
  if (config.redisClusterNodes.length > 0) presence = new RedisPresence({ ...presenceOptions, clusterNodes: config.redisClusterNodes });
  else if (config.redisUrl) presence = new RedisPresence({ ...presenceOptions, url: config.redisUrl });
  if (presence instanceof RedisPresence) await presence.ready(2_000).catch((error: Error) => logger.warn('presence starting before Redis is ready', { error: error.message }));

  // Node stats (GET /stats, the admin page) live there too: every node lists every node.
  const statsOptions = { prefix: config.redisChannelPrefix, logger, nodeId };
  let statsStore: NodeStatsStore = new MemoryNodeStatsStore();
  if (config.redisClusterNodes.length > 0) statsStore = new RedisNodeStatsStore({ ...statsOptions, clusterNodes: config.redisClusterNodes });
  else if (config.redisUrl) statsStore = new RedisNodeStatsStore({ ...statsOptions, url: config.redisUrl });
  if (statsStore instanceof RedisNodeStatsStore) await statsStore.ready(2_000).catch((error: Error) => logger.warn('node stats starting before Redis is ready', { error: error.message }));

  const server = new RealtimeServer(
    {
      host: config.host,
      port: config.port,
      nodeId,
      allowedOrigins: config.allowedOrigins,
      publishSecret: config.publishSecret,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxPayloadBytes: config.maxPayloadBytes,
      unreadNotificationsLimit: config.unreadNotificationsLimit,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      limits: {
        maxSubscriptions: config.maxSubscriptionsPerConnection,
        framesPerSecond: config.clientFramesPerSecond,
        frameBurst: config.clientFrameBurst,
        maxBufferedBytes: config.maxBufferedBytes,
      },
      admission: {
        maxConnections: config.maxConnections,
        maxPendingHandshakes: config.maxPendingHandshakes,
        maxConnectionsPerUser: config.maxConnectionsPerUser,
        connectRatePerAddress: config.connectRatePerIp,
        connectBurstPerAddress: config.connectBurstPerIp,
        trustProxy: config.trustProxy,
      },
      subscribesPerSecond: config.subscribesPerSecondPerUser,
      subscribeBurst: config.subscribeBurstPerUser,
      broadcastRetainMs: config.broadcastRetainMs,
    },
    {
      broker,
      directory,
      accessCache: directory,
      verifier: new SessionVerifier(config.nextAuthSecret),
      metrics,
      logger,
      presence,
      nodeStats: { store: statsStore, ttlMs: config.nodeStatsTtlMs },
    },
  );
  const nodeStats = new NodeStatsReporter({
    store: statsStore,
    nodeId,
    broker: broker.kind,
    metrics,
    counts: () => server.liveCounts(),
    ttlMs: config.nodeStatsTtlMs,
    logger,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('signal received', { signal });
    // A last resort in case a close hangs; PM2's kill_timeout must stay above this.
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 4_000).unref();
    // Leaving: off the stats list at once, not NODE_STATS_TTL_MS later.
    await within(nodeStats.stop(), 1_000);
    // Each step is bounded, so Redis and the database are closed whatever the sockets do.
    const serverClosed = await within(server.close(), config.shutdownTimeoutMs + 1_500);
    if (!serverClosed) logger.warn('sockets still open at the shutdown deadline; closing Redis and the database anyway');
    const [brokerClosed, databaseClosed] = await Promise.all([within(broker.close(), 1_000), within(directory.close(), 1_000), within(presence.close(), 1_000), within(statsStore.close(), 1_000)]);
    logger.info('bye', { brokerClosed, databaseClosed });
    process.exit(serverClosed ? 0 : 1);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // PM2 on Windows and some supervisors send a 'shutdown' message instead of a signal.
  process.on('message', (message) => {
    if (message === 'shutdown') void stop('shutdown message');
  });
  // Forked with an IPC channel (a launcher such as `npm start`, or PM2): if that parent dies,
  // even by SIGKILL, the channel closes and the server must not outlive it.
  if (process.send) process.on('disconnect', () => void stop('parent process disconnected'));

  const port = await server.listen();
  logger.info('listening', { host: config.host, port, broker: broker.kind, origins: config.allowedOrigins.length || 'any' });
  if (config.metricsPort !== undefined) {
    const metricsPort = await server.listenMonitoring(config.metricsPort);
    logger.info('monitoring listener', { host: '127.0.0.1', port: metricsPort });
  }
  nodeStats.start();
  process.send?.('ready');
  process.send?.({ type: 'listening', port });
}

/** Resolves true when `promise` settles within `ms`, false otherwise (never rejects). */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
