/**
 * Server-side configuration of the Next.js app, parsed once with zod on first use and frozen.
 *
 * Parsed lazily rather than at import time because `next build` imports route modules to
 * collect page data, and a build must not need a database URL or secrets. The first request
 * that needs the configuration fails fast, listing every problem at once.
 */
import { z } from 'zod';
import { clusterNodesSchema } from './realtime/cluster-nodes.ts';

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());

const envSchema = z.object({
  DATABASE_URL: z.string().min(1, 'DATABASE_URL is required (postgresql://…)'),
  /** Shared with the WebSocket server, which decrypts the same session tokens. */
  NEXTAUTH_SECRET: z.string().min(1, 'NEXTAUTH_SECRET is required'),
  /** The app's public origin; next-auth builds its callback URLs from it. */
  NEXTAUTH_URL: z.preprocess(emptyToUndefined, z.url().default('http://localhost:3000')),
  /** Set: publish with Redis PUBLISH. Unset: publish with the server's POST /publish. */
  REDIS_URL: optionalString,
  /** `host:port,…`: a Redis Cluster (sharded pub/sub), as the server's; takes precedence over REDIS_URL. */
  REDIS_CLUSTER_NODES: clusterNodesSchema,
  /** Must equal the WebSocket server's REDIS_CHANNEL_PREFIX. */
  REDIS_CHANNEL_PREFIX: z.preprocess(emptyToUndefined, z.string().default('ws:')),
  /** Where the WebSocket server's HTTP endpoint listens, as seen from this process. */
  WS_PUBLISH_URL: z.preprocess(emptyToUndefined, z.url().default('http://127.0.0.1:3002')),
  /** Bearer secret for POST /publish; only needed without REDIS_URL. */
  WS_PUBLISH_SECRET: optionalString,
  /**
   * What the browser connects to. Unset: `ws://<host of the page>:<port of WS_PUBLISH_URL>`
   * (ws://localhost:3002 locally: another origin, so the browser authenticates with a
   * short-lived token from /api/realtime/token). A path such as
   * `/ws`: the same origin behind nginx, where the httpOnly session cookie travels with the
   * upgrade and no token is handed to scripts. A full ws:// or wss:// URL: used as is, with a
   * token.
   */
  WS_PUBLIC_URL: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine((v) => v.startsWith('/') || /^wss?:\/\//.test(v), 'WS_PUBLIC_URL must be a path (/ws) or a ws:// or wss:// URL')
      .optional(),
  ),
  /** Interval of the notifications HTTP poll while the socket is not open, in ms (60 s). */
  NOTIFICATIONS_POLL_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(250).default(60_000)),
  /**
   * Lifetime of the browser's realtime token (GET /api/realtime/token), in seconds: 300 by
   * default, 10 to 900. The WebSocket server closes a socket with 4002 at the token's `exp`
   * unless the client refreshed it, so short lifetimes are cheap; tests use the minimum.
   */
  REALTIME_TOKEN_TTL_SECONDS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(10).max(900).default(300)),
  /** Connections in the app's PostgreSQL pool; the embedded PGlite accepts only a few. */
  DATABASE_POOL_MAX: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(100).default(10)),
  /**
   * `1`: this is the demo (the demo accounts alice/bob/carol@example.com exist), and the
   * sign-in page lists them. `npm start` (scripts/start.ts) sets it when it has seeded them: on
   * the embedded database, or with SEED_DEMO=1. Unset or `0` anywhere else, so a real site
   * does not advertise accounts it does not have.
   */
  FONANA_DEMO: z.preprocess(emptyToUndefined, z.enum(['0', '1']).default('0').transform((v) => v === '1')),
});

export type Env = Readonly<z.infer<typeof envSchema>>;

export class EnvError extends Error {
  override readonly name = 'EnvError';
}

let parsed: Env | undefined;

export function env(): Env {
  if (parsed) return parsed;
  const result = envSchema.safeParse(process.env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new EnvError(`invalid app configuration:\n${problems}`);
  }
  parsed = Object.freeze(result.data);
  return parsed;
}
