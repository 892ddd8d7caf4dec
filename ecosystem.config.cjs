// PM2 process file: the Next.js app (`fonana`), the WebSocket server (`fonana-ws`) and the
// outbox relay (`fonana-outbox`, which publishes what the app's transactions enqueue).
//
//   npm run build && pm2 start ecosystem.config.cjs        first start
//   pm2 reload ecosystem.config.cjs --update-env           zero-downtime reload (scripts/deploy.sh)
//
// CommonJS (.cjs) because the package is `"type": "module"` and PM2 loads this file with
// require(). Secrets are not written here: PM2 hands each app the environment of the shell that
// runs `pm2 start`/`reload --update-env` (DATABASE_URL, NEXTAUTH_SECRET, NEXTAUTH_URL,
// REDIS_URL, WS_PUBLISH_SECRET, ALLOWED_ORIGINS…), plus the `env` blocks below.
//
// Settings read from the environment when this file is loaded:
//   WS_INSTANCES    fonana-ws processes, a number or "max" (default 1). Always cluster mode, so
//                   they share one port and `pm2 reload` replaces them one at a time. More than
//                   one needs REDIS_URL: each process only sees its own clients, and Redis is
//                   what fans an event out to all of them.
//   WS_PORT         default 3002;  PORT (the app) default 3000.
//   LOG_DIR         default ./logs (created if missing).
//   WS_DIST_DIR     where `npm run ws:build` wrote the server, default websocket-server/dist.
//   SHUTDOWN_TIMEOUT_MS  the server's drain time (default 5000); kill_timeout is derived from it.
//   OUTBOX_RELAY_INSTANCES  fonana-outbox processes (default 1). Any number may run, here or on
//                   other machines: they share the outbox rows (FOR UPDATE SKIP LOCKED).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = __dirname;
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
if (instances !== 1 && !env.REDIS_URL) {
  throw new Error(`WS_INSTANCES=${env.WS_INSTANCES} needs REDIS_URL: several fonana-ws processes share events only through Redis`);
}

const logDir = path.resolve(root, env.LOG_DIR ?? 'logs');
fs.mkdirSync(logDir, { recursive: true });

const wsDist = path.resolve(root, env.WS_DIST_DIR ?? 'websocket-server/dist');
// The server waits up to SHUTDOWN_TIMEOUT_MS for sockets to close, and main.ts exits on its own
// 2 s after that at the latest. PM2 sends SIGINT, then SIGKILL after kill_timeout: keep a
// margin above both so a draining process is never killed mid-close (PM2's default is 1.6 s).
const shutdownTimeoutMs = positiveInt('SHUTDOWN_TIMEOUT_MS', 5_000);
const wsKillTimeoutMs = shutdownTimeoutMs + 2_000 + 3_000;

module.exports = {
  apps: [
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
      env: { NODE_ENV: 'production', NEXT_TELEMETRY_DISABLED: '1' },
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
        WS_PORT: String(positiveInt('WS_PORT', 3002)),
      },
      // main.ts sends 'ready' once it listens; `pm2 reload` starts a new process, waits for
      // that, and only then stops the old one with SIGINT. listen_timeout bounds the wait
      // (start-up is ~1 s: database check, Redis connect up to 2 s).
      wait_ready: true,
      listen_timeout: 15_000,
      kill_timeout: wsKillTimeoutMs,
      // An idle connection costs ~6 KB of RSS; 1 GB is ~150k idle sockets per process.
      max_memory_restart: env.WS_MAX_MEMORY ?? '1G',
      exp_backoff_restart_delay: 200,
      // One pair of files for all instances; every JSON line carries its nodeId (host:pid).
      // The server writes all its log lines to stderr (stdout stays free for tools), so they
      // are in fonana-ws.err.log. Rotate with logrotate (copytruncate) or pm2-logrotate.
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
      // server's POST /publish (WS_PUBLISH_URL + WS_PUBLISH_SECRET) without it.
      script: path.join(root, 'scripts/outbox-relay.pm2.mjs'),
      exec_mode: 'fork',
      instances: positiveInt('OUTBOX_RELAY_INSTANCES', 1) || 1,
      env: { NODE_ENV: 'production' },
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
  ],
};
