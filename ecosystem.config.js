// PM2 process file: the Next.js app (`fonana`), the WebSocket server (`fonana-ws`) and the
// outbox relay (`fonana-outbox`, which publishes what the app's transactions enqueue).
//
//   npm run build && pm2 start ecosystem.config.js          first start
//   pm2 reload ecosystem.config.js --update-env             zero-downtime reload (scripts/deploy.sh)
//
// An ES module, like every .js file of this package (`"type": "module"`). PM2 7 loads an
// ecosystem file with a plain require() (node_modules/pm2/lib/Common.js, parseConfig: `.js`,
// `.cjs` and `.mjs` alike); Node ≥ 20.19 (this package's engines) can require() an ES module
// as long as it has no top-level await, which this file must therefore never use. What
// require() returns:
//   - the object exported under the name 'module.exports' (the last line), where Node honours
//     that name: the config object itself;
//   - otherwise the module namespace, whose named export `apps` is what PM2 reads.
// Both are checked by test/ops/ecosystem.test.ts. There is no ecosystem.config.cjs any more:
// PM2 does not need one.
//
// Secrets are not written here: PM2 hands each app the environment of the shell that runs
// `pm2 start`/`reload --update-env` (DATABASE_URL, NEXTAUTH_SECRET, NEXTAUTH_URL, REDIS_URL,
// WS_PUBLISH_SECRET, ALLOWED_ORIGINS…), plus the `env` blocks below.
//
// Settings read from the environment when this file is loaded:
//   WS_INSTANCES    fonana-ws processes, a number or "max" (default 1). Always cluster mode, so
//                   they share one port and `pm2 reload` replaces them one at a time. More than
//                   one needs REDIS_URL (or REDIS_CLUSTER_NODES): each process only sees its own clients, and Redis is
//                   what fans an event out to all of them.
//   WS_PORT         default 3002;  PORT (the app) default 3000.
//   METRICS_PORT    default 9610: fonana-ws process n also serves /health and /metrics on
//                   127.0.0.1:(METRICS_PORT + n), so Prometheus scrapes each process on its own
//                   (the shared WS_PORT reaches one at random). METRICS_PORT= (empty) turns it off.
//   WS_PUBLISH_URL  default http://127.0.0.1:$WS_PORT: where the app and the relay reach the
//                   server (POST /publish, POST /control) and where the app's GET /api/health
//                   checks the server's /health.
//   LOG_DIR         default ./logs (created if missing). Rotation: ops/logrotate/fonana.
//   FONANA_ROOT     the directory the apps run from (see `root` below; deploy.sh sets it).
//   WS_DIST_DIR     where `npm run ws:build` wrote the server, default websocket-server/dist.
//   SHUTDOWN_TIMEOUT_MS  the server's drain time (default 5000); kill_timeout is derived from it.
//   OUTBOX_RELAY_INSTANCES  fonana-outbox processes (default 1). Any number may run, here or on
//                   other machines: they share the outbox rows (FOR UPDATE SKIP LOCKED).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// FONANA_ROOT: the directory the apps run from, default this file's own. scripts/deploy.sh sets
// it to $DEPLOY_ROOT/current, a symlink, and every path below goes through it unresolved: a
// reload after the link moved starts the processes from the new release (Node resolves the
// link when it loads the script), and PM2's saved list always names `current`. Without it the
// path would be the release's real directory (Node resolves symlinks in import.meta.url).
const root = process.env.FONANA_ROOT ? path.resolve(process.env.FONANA_ROOT) : path.dirname(fileURLToPath(import.meta.url));
const env = process.env;

function positiveInt(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** "max" (one per CPU), -1 (all CPUs but one) or a positive count, as PM2 understands them. */
function wsInstances() {
  const raw = (env.WS_INSTANCES ?? '1').trim();
  if (raw === 'max') return 'max';
  const value = Number(raw);
  if (!Number.isInteger(value) || value === 0 || value < -1) throw new Error(`WS_INSTANCES must be a positive number, -1 or "max", got ${JSON.stringify(raw)}`);
  return value;
}

const instances = wsInstances();
// Without Redis each process has an in-process broker: an event published to one process
// (POST /publish lands on whichever process the cluster picks) would never reach clients
// connected to the others. Refuse rather than lose events silently.
if (instances !== 1 && !env.REDIS_URL && !env.REDIS_CLUSTER_NODES) {
  throw new Error(`WS_INSTANCES=${env.WS_INSTANCES} needs REDIS_URL: several fonana-ws processes share events only through Redis`);
}

const logDir = path.resolve(root, env.LOG_DIR ?? 'logs');
fs.mkdirSync(logDir, { recursive: true });

const wsDist = path.resolve(root, env.WS_DIST_DIR ?? 'websocket-server/dist');
const wsPort = positiveInt('WS_PORT', 3002);
// Unset: on, from 9610 (one port per process). Empty: off (the server ignores an empty value).
const metricsPort = env.METRICS_PORT === undefined ? '9610' : env.METRICS_PORT;
if (metricsPort !== '') positiveInt('METRICS_PORT', 9610);
const wsPublishUrl = env.WS_PUBLISH_URL || `http://127.0.0.1:${wsPort}`;
// The server waits up to SHUTDOWN_TIMEOUT_MS for sockets to close, and main.ts exits on its own
// 2 s after that at the latest. PM2 sends SIGINT, then SIGKILL after kill_timeout: keep a
// margin above both so a draining process is never killed mid-close (PM2's default is 1.6 s).
const shutdownTimeoutMs = positiveInt('SHUTDOWN_TIMEOUT_MS', 5_000);
const wsKillTimeoutMs = shutdownTimeoutMs + 2_000 + 3_000;

export const apps = [
  {
    name: 'fonana',
    cwd: root,
    // next's own CLI, run by node: `next start` serves the `.next` build of `npm run build`.
    // Fork mode, one process: Next.js does not announce readiness to PM2 (no wait_ready), so a
    // reload of the app is a restart; put several behind nginx's `app` upstream to scale it.
    script: path.join(root, 'node_modules/next/dist/bin/next'),
    args: ['start', '--port', String(positiveInt('PORT', 3000))],
    exec_mode: 'fork',
    instances: 1,
    env: { NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1', WS_PUBLISH_URL: wsPublishUrl },
    max_memory_restart: env.APP_MAX_MEMORY ?? '1G',
    kill_timeout: 5_000,
    // Restart a crashing app with a growing delay instead of a tight loop.
    exp_backoff_restart_delay: 200,
    out_file: path.join(logDir, 'fonana.out.log'),
    error_file: path.join(logDir, 'fonana.err.log'),
    time: true,
  },
  {
    name: 'fonana-ws',
    cwd: root,
    // The compiled server (npm run ws:build): plain JavaScript, no TypeScript at run time.
    script: path.join(wsDist, 'websocket-server/src/main.js'),
    node_args: ['--enable-source-maps'],
    exec_mode: 'cluster',
    instances,
    env: {
      NODE_ENV: 'production',
      WS_PORT: String(wsPort),
      // Process n (PM2's NODE_APP_INSTANCE) listens on 127.0.0.1:(METRICS_PORT + n). During a
      // reload the new process n shares that port with the old one through PM2's cluster
      // master until the old one exits.
      METRICS_PORT: metricsPort,
    },
    // main.ts sends 'ready' once it listens; `pm2 reload` starts a new process, waits for
    // that, and only then stops the old one with SIGINT. listen_timeout bounds the wait
    // (start-up is ~1 s: database check, Redis connect up to 2 s).
    wait_ready: true,
    listen_timeout: 15_000,
    kill_timeout: wsKillTimeoutMs,
    // Measured (README, "Scale on one machine"): ~26 KiB of RSS per subscribed connection
    // while connections keep arriving (V8 keeps the heap the handshakes grew), ~21 KiB idle
    // after a GC; 1 GB is ~35k connections per process. Raise WS_MAX_MEMORY beyond that.
    max_memory_restart: env.WS_MAX_MEMORY ?? '1G',
    exp_backoff_restart_delay: 200,
    // One pair of files for all instances; every JSON line carries its nodeId (host:pid).
    // The server writes all its log lines to stderr (stdout stays free for tools), so they
    // are in fonana-ws.err.log. Rotate with ops/logrotate/fonana (copytruncate) or pm2-logrotate.
    merge_logs: true,
    out_file: path.join(logDir, 'fonana-ws.out.log'),
    error_file: path.join(logDir, 'fonana-ws.err.log'),
    // No time prefix: the server writes JSON lines with their own timestamp.
    time: false,
  },
  {
    name: 'fonana-outbox',
    cwd: root,
    // scripts/outbox-relay.ts through tsx (scripts/outbox-relay.pm2.mjs): the relay shares lib/
    // with the app, which only Next.js compiles. It publishes through REDIS_URL, or the
    // server's POST /publish (WS_PUBLISH_URL + WS_PUBLISH_SECRET) without it. It also runs the
    // scheduled jobs (lib/jobs/: subscription expiry, notification retention; one run of each at
    // a time across instances by an advisory lock), configured by SUBSCRIPTION_EXPIRY_INTERVAL_MS,
    // NOTIFICATION_RETENTION_INTERVAL_MS, NOTIFICATION_RETENTION_DAYS, SCHEDULED_JOBS (README).
    script: path.join(root, 'scripts/outbox-relay.pm2.mjs'),
    exec_mode: 'fork',
    instances: positiveInt('OUTBOX_RELAY_INSTANCES', 1) || 1,
    env: { NODE_ENV: 'production', WS_PUBLISH_URL: wsPublishUrl },
    // It sends 'ready' once it LISTENs; a batch in flight finishes within its publish timeouts,
    // and the script exits on its own 10 s after SIGINT at the latest.
    wait_ready: true,
    listen_timeout: 15_000,
    kill_timeout: 12_000,
    max_memory_restart: env.OUTBOX_MAX_MEMORY ?? '300M',
    exp_backoff_restart_delay: 200,
    merge_logs: true,
    out_file: path.join(logDir, 'fonana-outbox.out.log'),
    error_file: path.join(logDir, 'fonana-outbox.err.log'),
    // JSON lines with their own timestamp.
    time: false,
  },
];

const config = { apps };
export default config;
// What require() returns (see the top of this file).
export { config as 'module.exports' };
