/**
 * Environment parsed once at start-up. Anything wrong fails fast with every problem listed,
 * before a port is opened.
 */
import { z } from 'zod';

const commaList = z
  .string()
  .optional()
  .transform((value) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** `host:port,host:port` (IPv4 or a name; IPv6 would need brackets and is not accepted). */
const hostPortList = commaList.pipe(
  z.array(
    z
      .string()
      .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
      .transform((entry) => ({ host: entry.slice(0, entry.lastIndexOf(':')), port: Number(entry.slice(entry.lastIndexOf(':') + 1)) }))
      .refine(({ port }) => port >= 1 && port <= 65535, 'port must be 1–65535'),
  ),
);

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  /** 0 picks a free port (tests); the chosen port is logged and sent to a parent process. */
  WS_PORT: z.coerce.number().int().min(0).max(65535).default(3002),
  WS_HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().min(1, 'DATABASE_URL is required (postgresql://…)'),
  /** PostgreSQL connections of this process (the embedded PGlite accepts only a few in all). */
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(100).default(10),
  /** Without it the server uses an in-process broker: one machine, `POST /publish` only. */
  REDIS_URL: z.string().optional(),
  /**
   * Redis Cluster seed nodes, `host:port,host:port`: sharded pub/sub (SSUBSCRIBE/SPUBLISH on
   * `<prefix>{<channel>}`) across the cluster's masters, for when one Redis is the limit. Takes
   * precedence over REDIS_URL.
   */
  REDIS_CLUSTER_NODES: hostPortList,
  /** Prefix of every Redis pub/sub channel; publishers use `PUBLISH <prefix><channel>`
   * (with REDIS_CLUSTER_NODES: `SPUBLISH <prefix>{<channel>}`). */
  REDIS_CHANNEL_PREFIX: z.string().default('ws:'),
  NEXTAUTH_SECRET: z.string().min(1, 'NEXTAUTH_SECRET is required (the Next.js app’s secret)'),
  /** Bearer secret for `POST /publish`; the endpoint answers 503 when it is not set. */
  WS_PUBLISH_SECRET: z.string().optional(),
  /** Comma-separated list of accepted Origin values; empty accepts any origin, which is refused
   * in production (NODE_ENV=production): a browser's cookie would then open sockets for any site. */
  ALLOWED_ORIGINS: commaList,
  NODE_ENV: z.string().optional(),
  HEARTBEAT_INTERVAL_MS: ms(30_000),
  /** Largest client frame in bytes; client frames are small JSON commands. */
  MAX_PAYLOAD_BYTES: z.coerce.number().int().min(256).default(16 * 1024),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().positive().default(200),
  /** Token bucket per connection: sustained frames per second and burst size. */
  CLIENT_FRAMES_PER_SECOND: z.coerce.number().positive().default(50),
  CLIENT_FRAME_BURST: z.coerce.number().int().positive().default(200),
  /** Bytes queued for one socket beyond which it is closed as a slow consumer. */
  MAX_BUFFERED_BYTES: z.coerce.number().int().positive().default(4 * 1024 * 1024),
  UNREAD_NOTIFICATIONS_LIMIT: z.coerce.number().int().positive().max(500).default(50),
  /** Open plus in-progress connections of this process; beyond it upgrades get 503. */
  MAX_CONNECTIONS: z.coerce.number().int().positive().default(20_000),
  /** Open connections of one user on this process; beyond it upgrades get 429. */
  MAX_CONNECTIONS_PER_USER: z.coerce.number().int().positive().default(20),
  /** Handshakes awaiting decryption and the database at once; beyond it upgrades get 503. */
  MAX_PENDING_HANDSHAKES: z.coerce.number().int().positive().default(64),
  /** Connects per second from one client address (sustained) and the burst allowed at once. */
  CONNECT_RATE_PER_IP: z.coerce.number().positive().default(10),
  CONNECT_BURST_PER_IP: z.coerce.number().int().positive().default(30),
  /** Behind a proxy (nginx): take the client address from X-Real-IP / X-Forwarded-For. */
  TRUST_PROXY: z.enum(['0', '1', 'true', 'false']).default('0').transform((v) => v === '1' || v === 'true'),
  /** Subscribes per second of one user on this process (each may read the database). */
  SUBSCRIBES_PER_SECOND_PER_USER: z.coerce.number().positive().default(10),
  SUBSCRIBE_BURST_PER_USER: z.coerce.number().int().positive().default(50),
  /** Longest wait for a new database connection, and for one statement (ms). */
  DATABASE_CONNECT_TIMEOUT_MS: ms(3_000),
  /** How long an access fact (session state, post, subscription, purchase) may be served from
   * memory; control messages invalidate it sooner. 0 turns the cache off. */
  ACCESS_CACHE_TTL_MS: z.coerce.number().int().min(0).default(30_000),
  DATABASE_STATEMENT_TIMEOUT_MS: ms(5_000),
  /** How long a presence entry (an online creator, a post's viewer) counts after its node last
   * refreshed it; nodes refresh every third of it. A dead node stops counting within 4/3 of it. */
  PRESENCE_TTL_MS: z.coerce.number().int().min(300).max(300_000).default(10_000),
  /** How long a node's stats snapshot (GET /stats, the admin page) counts after it was written;
   * nodes write every third of it, so a dead node drops out of the list within this. */
  NODE_STATS_TTL_MS: z.coerce.number().int().min(300).max(300_000).default(6_000),
  /** How long the latest operator broadcast is also sent to sockets that connect after it
   * (ms); 0 sends it only to the sockets open when it arrives (see ADR 0010). At most a day. */
  BROADCAST_RETAIN_MS: z.coerce.number().int().min(0).max(86_400_000).default(600_000),
  /** Longest a shutdown waits for sockets to close before it ends the process anyway. */
  SHUTDOWN_TIMEOUT_MS: ms(5_000),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  NODE_ID: z.string().optional(),
  /**
   * Optional per-process monitoring port. Under PM2 cluster mode every process shares WS_PORT,
   * so a scrape of /metrics reaches a random one; with METRICS_PORT each process also serves
   * /health and /metrics on 127.0.0.1:(METRICS_PORT + NODE_APP_INSTANCE).
   */
  METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Set by PM2 in cluster mode: 0, 1, … per process. */
  NODE_APP_INSTANCE: z.coerce.number().int().min(0).default(0),
});

export type Config = {
  port: number;
  host: string;
  databaseUrl: string;
  databasePoolMax: number;
  redisUrl: string | undefined;
  /** Empty unless REDIS_CLUSTER_NODES is set. */
  redisClusterNodes: ReadonlyArray<{ host: string; port: number }>;
  redisChannelPrefix: string;
  nextAuthSecret: string;
  publishSecret: string | undefined;
  allowedOrigins: readonly string[];
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  maxSubscriptionsPerConnection: number;
  clientFramesPerSecond: number;
  clientFrameBurst: number;
  maxBufferedBytes: number;
  unreadNotificationsLimit: number;
  maxConnections: number;
  maxConnectionsPerUser: number;
  maxPendingHandshakes: number;
  connectRatePerIp: number;
  connectBurstPerIp: number;
  trustProxy: boolean;
  subscribesPerSecondPerUser: number;
  subscribeBurstPerUser: number;
  databaseConnectTimeoutMs: number;
  accessCacheTtlMs: number;
  databaseStatementTimeoutMs: number;
  presenceTtlMs: number;
  nodeStatsTtlMs: number;
  broadcastRetainMs: number;
  shutdownTimeoutMs: number;
  logLevel: string;
  logFormat: 'json' | 'pretty';
  nodeId: string | undefined;
  /** Port of this process's own /health + /metrics listener on 127.0.0.1, if any. */
  metricsPort: number | undefined;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const empty = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = envSchema.safeParse(empty);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new ConfigError(`invalid WebSocket server configuration:\n${problems}`);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production' && e.ALLOWED_ORIGINS.length === 0) {
    throw new ConfigError(
      'invalid WebSocket server configuration:\n  ALLOWED_ORIGINS: required in production (the app’s origin, e.g. https://example.com); ' +
        'without it any website could open sockets with a visitor’s session cookie',
    );
  }
  return {
    port: e.WS_PORT,
    host: e.WS_HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    redisChannelPrefix: e.REDIS_CHANNEL_PREFIX,
    nextAuthSecret: e.NEXTAUTH_SECRET,
    publishSecret: e.WS_PUBLISH_SECRET,
    allowedOrigins: e.ALLOWED_ORIGINS,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
    maxSubscriptionsPerConnection: e.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    clientFramesPerSecond: e.CLIENT_FRAMES_PER_SECOND,
    clientFrameBurst: e.CLIENT_FRAME_BURST,
    maxBufferedBytes: e.MAX_BUFFERED_BYTES,
    unreadNotificationsLimit: e.UNREAD_NOTIFICATIONS_LIMIT,
    maxConnections: e.MAX_CONNECTIONS,
    maxConnectionsPerUser: e.MAX_CONNECTIONS_PER_USER,
    maxPendingHandshakes: e.MAX_PENDING_HANDSHAKES,
    connectRatePerIp: e.CONNECT_RATE_PER_IP,
    connectBurstPerIp: e.CONNECT_BURST_PER_IP,
    trustProxy: e.TRUST_PROXY,
    subscribesPerSecondPerUser: e.SUBSCRIBES_PER_SECOND_PER_USER,
    subscribeBurstPerUser: e.SUBSCRIBE_BURST_PER_USER,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    accessCacheTtlMs: e.ACCESS_CACHE_TTL_MS,
    databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
    presenceTtlMs: e.PRESENCE_TTL_MS,
    nodeStatsTtlMs: e.NODE_STATS_TTL_MS,
    broadcastRetainMs: e.BROADCAST_RETAIN_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    nodeId: e.NODE_ID,
    metricsPort: e.METRICS_PORT === undefined ? undefined : e.METRICS_PORT + e.NODE_APP_INSTANCE,
  };
}
