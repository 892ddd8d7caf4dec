// `npm start` (production server) and `npm run dev` (next dev): the whole product with one
// command.
//
// Without DATABASE_URL: an embedded PostgreSQL (PGlite, data in ./data/pglite) on a free local
// port, migrated and seeded with the demo accounts (idempotent: the seed upserts), so that a
// fresh clone runs with `npm install && npm start` and alice/bob/carol@example.com can sign in
// at once with "password". With DATABASE_URL: that database, migrated (the equivalent of
// `prisma migrate deploy`, a no-op when up to date) but not seeded unless SEED_DEMO=1.
//
// Then the WebSocket server (in-process broker unless REDIS_URL is set), the outbox relay
// (scripts/outbox-relay.ts: publishes what the app's transactions enqueue, through Redis or the
// server's POST /publish) and Next.js, sharing NEXTAUTH_SECRET and WS_PUBLISH_SECRET: from the
// environment, else generated on the first run and kept in <data dir>/secrets.json
// (scripts/secrets.ts; no secret is written in the code). On the embedded database the relay
// polls every 250 ms (OUTBOX_POLL_INTERVAL_MS): PGlite serves one backend session to all its
// clients, so a NOTIFY never reaches the relay's LISTEN connection.
// FONANA_DEMO=1 tells the app that the demo accounts exist (the sign-in page lists them): only
// when this script seeded them. SIGINT/SIGTERM are forwarded; if any child dies the others are
// stopped and this process exits non-zero.
//
// NODE_ENV=production: NEXTAUTH_SECRET and ALLOWED_ORIGINS must be set, or this exits with
// code 1 before starting anything; nothing is generated or read from the data dir for secrets.
//
// Environment (all optional): PORT (3000), WS_PORT (3002), DATABASE_URL, REDIS_URL,
// NEXTAUTH_SECRET, NEXTAUTH_URL, WS_PUBLISH_SECRET, WS_PUBLIC_URL, ALLOWED_ORIGINS,
// NOTIFICATIONS_POLL_MS, SEED_DEMO=1, FONANA_DATA_DIR (./data: the embedded database in
// pglite/ and secrets.json), NEXT_DIST_DIR (.next: the build next start uses).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded-postgres.ts';
import { applyMigrations } from './db/schema-engine.ts';
import { DEMO_PASSWORD, seedDemoData } from './db/seed.ts';
import { loadOrCreateSecrets, productionProblems } from './secrets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dev = process.argv.includes('--dev');
const NEXT_BIN = path.join(root, 'node_modules/next/dist/bin/next');
const WS_MAIN = path.join(root, 'websocket-server/src/main.ts');
const RELAY_MAIN = path.join(root, 'scripts/outbox-relay.ts');
/** Longest wait for a child to exit after SIGTERM before SIGKILL (ms). */
const CHILD_STOP_TIMEOUT_MS = 10_000;
const production = process.env.NODE_ENV === 'production';
/** The embedded database (pglite/) and the generated secrets (secrets.json). */
const dataDir = path.resolve(process.env.FONANA_DATA_DIR || path.join(root, 'data'));

const say = (line: string) => process.stdout.write(`[start] ${line}\n`);
/** A path as the user would type it: ./data/… inside the repository, absolute elsewhere. */
const shown = (file: string) => {
  const relative = path.relative(root, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : `./${relative}`;
};

// Before anything starts (no database, no child, no file): a production start without these
// would run with a secret nobody else knows, or accept sockets from any site.
if (production) {
  const problems = productionProblems();
  if (problems.length > 0) {
    process.stderr.write(`[start] NODE_ENV=production: not starting.\n${problems.map((p) => `[start]   ${p}\n`).join('')}`);
    process.exit(1);
  }
}

const children = new Set<ChildProcess>();
let database: EmbeddedPostgres | undefined;
let shuttingDown = false;

async function shutdown(code: number, why: string): Promise<never> {
  if (shuttingDown) return new Promise<never>(() => {});
  shuttingDown = true;
  say(`stopping (${why})`);
  await Promise.all([...children].map((child) => stopChild(child)));
  await database?.stop().catch((error: Error) => say(`embedded database did not stop cleanly: ${error.message}`));
  process.exit(code);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function watch(child: ChildProcess, name: string): ChildProcess {
  children.add(child);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!shuttingDown) void shutdown(code === 0 ? 1 : (code ?? 1), `${name} exited (${signal ?? code})`);
  });
  return child;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0, signal));
// `npm start` runs this under `sh -c`, and npm does not pass SIGTERM on to it: when npm is
// killed, this process is orphaned (re-parented) instead. Noticing that within a second keeps
// the WebSocket server and Next.js from outliving it.
const parentAtStart = process.ppid;
setInterval(() => {
  if (process.ppid !== parentAtStart) void shutdown(0, 'parent process exited');
}, 1_000).unref();

/** The database URL, and whether the demo accounts were seeded into it (this run). */
async function prepareDatabase(): Promise<{ url: string; demo: boolean }> {
  const external = process.env.DATABASE_URL;
  const pgliteDir = path.join(dataDir, 'pglite');
  const url = external ?? (database = await startEmbeddedPostgres({ dataDir: pgliteDir, port: 0 })).url;
  say(external ? 'database: DATABASE_URL' : `database: embedded PGlite in ${shown(pgliteDir)} at ${url}`);
  await applyMigrations(url);
  const demo = !external || process.env.SEED_DEMO === '1';
  if (demo) {
    await seedDemoData(url);
    say(`demo data ready: alice@example.com, bob@example.com, carol@example.com (password "${DEMO_PASSWORD}")`);
  }
  return { url, demo };
}

/** NEXTAUTH_SECRET and WS_PUBLISH_SECRET for both children (see scripts/secrets.ts). */
async function prepareSecrets(): Promise<{ nextAuthSecret: string; publishSecret: string }> {
  if (production) {
    // NEXTAUTH_SECRET was checked at start-up. The publish secret is shared by the two children
    // only, so without one in the environment a fresh random one per run is as good as any.
    const nextAuthSecret = process.env.NEXTAUTH_SECRET ?? '';
    const publishSecret = process.env.WS_PUBLISH_SECRET || randomBytes(32).toString('base64url');
    if (!process.env.WS_PUBLISH_SECRET) say('WS_PUBLISH_SECRET not set: a random one for this run (other backends cannot POST /publish)');
    return { nextAuthSecret, publishSecret };
  }
  const { secrets, source, file } = await loadOrCreateSecrets(dataDir);
  const from = (name: keyof typeof source) =>
    source[name] === 'environment' ? 'from the environment' : source[name] === 'generated' ? `generated into ${shown(file)}` : `from ${shown(file)}`;
  say(`secrets: NEXTAUTH_SECRET ${from('NEXTAUTH_SECRET')}, WS_PUBLISH_SECRET ${from('WS_PUBLISH_SECRET')}`);
  return { nextAuthSecret: secrets.NEXTAUTH_SECRET, publishSecret: secrets.WS_PUBLISH_SECRET };
}

/** Starts the WebSocket server and resolves with its port (it reports it over IPC). */
function startWebSocketServer(env: NodeJS.ProcessEnv): Promise<number> {
  const child = watch(fork(WS_MAIN, [], { cwd: root, env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'WebSocket server');
  return new Promise((resolve, reject) => {
    child.on('message', (message: unknown) => {
      if ((message as { type?: unknown } | null)?.type === 'listening') resolve((message as { port: number }).port);
    });
    child.once('exit', () => reject(new Error('the WebSocket server exited before listening')));
  });
}

/** Starts the outbox relay and resolves once it is ready (it says so over IPC). */
function startOutboxRelay(env: NodeJS.ProcessEnv): Promise<void> {
  const child = watch(fork(RELAY_MAIN, [], { cwd: root, env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'outbox relay');
  return new Promise((resolve, reject) => {
    child.on('message', (message: unknown) => {
      if (message === 'ready') resolve();
    });
    child.once('exit', () => reject(new Error('the outbox relay exited before it was ready')));
  });
}

function runNext(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [NEXT_BIN, ...args], { cwd: root, env, stdio: 'inherit' });
}

async function ensureProductionBuild(env: NodeJS.ProcessEnv): Promise<void> {
  // The same output directory as next.config.ts's distDir.
  const buildId = path.join(root, process.env.NEXT_DIST_DIR || '.next', 'BUILD_ID');
  if (existsSync(buildId)) {
    say(`using the build of ${statSync(buildId).mtime.toISOString()} (after code changes: npm run build, or npm run dev)`);
    return;
  }
  say('no production build yet: running next build (about a minute, once)');
  const build = runNext(['build'], env);
  children.add(build);
  const code = await new Promise<number | null>((resolve) => build.once('exit', resolve));
  children.delete(build);
  if (code !== 0) await shutdown(1, `next build failed (${code})`);
}

async function waitForApp(url: string, timeoutMs = 120_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !shuttingDown) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

async function main(): Promise<void> {
  const appPort = Number(process.env.PORT ?? 3000);
  const wsPort = Number(process.env.WS_PORT ?? 3002);
  const { nextAuthSecret, publishSecret } = await prepareSecrets();
  const appUrl = process.env.NEXTAUTH_URL ?? `http://localhost:${appPort}`;

  const { url: databaseUrl, demo } = await prepareDatabase();

  const wsEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    NEXTAUTH_SECRET: nextAuthSecret,
    WS_PUBLISH_SECRET: publishSecret,
    WS_PORT: String(wsPort),
    // PGlite serves a handful of connections in all (20): 5 here, 5 for the app.
    DATABASE_POOL_MAX: process.env.DATABASE_POOL_MAX ?? (database ? '5' : '10'),
    // The browser's Origin on the handshake: the app, however it is addressed locally.
    ALLOWED_ORIGINS:
      process.env.ALLOWED_ORIGINS ??
      [...new Set([new URL(appUrl).origin, `http://localhost:${appPort}`, `http://127.0.0.1:${appPort}`])].join(','),
    LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty',
  };
  if (database) delete wsEnv.REDIS_URL; // embedded mode: in-process broker, POST /publish
  const listeningPort = await startWebSocketServer(wsEnv);
  say(`WebSocket server on ws://localhost:${listeningPort} (${wsEnv.REDIS_URL ? 'Redis broker' : 'in-process broker'})`);

  const relayEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    WS_PUBLISH_SECRET: publishSecret,
    WS_PUBLISH_URL: process.env.WS_PUBLISH_URL ?? `http://127.0.0.1:${listeningPort}`,
  };
  if (database) {
    delete relayEnv.REDIS_URL;
    relayEnv.OUTBOX_POLL_INTERVAL_MS ??= '250';
  }
  await startOutboxRelay(relayEnv);
  say(`outbox relay publishing through ${relayEnv.REDIS_URL ? 'Redis' : 'POST /publish'}`);

  const appEnv: NodeJS.ProcessEnv = {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: '1',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: process.env.DATABASE_POOL_MAX ?? (database ? '5' : '10'),
    NEXTAUTH_SECRET: nextAuthSecret,
    NEXTAUTH_URL: appUrl,
    WS_PUBLISH_SECRET: publishSecret,
    WS_PUBLISH_URL: process.env.WS_PUBLISH_URL ?? `http://127.0.0.1:${listeningPort}`,
  };
  // Decided here, whatever the environment said: the sign-in page lists the demo accounts only
  // where they exist.
  if (demo) appEnv.FONANA_DEMO = '1';
  else delete appEnv.FONANA_DEMO;
  if (database) delete appEnv.REDIS_URL;
  if (!dev) await ensureProductionBuild(appEnv);
  watch(runNext(dev ? ['dev', '-p', String(appPort)] : ['start', '-p', String(appPort)], appEnv), 'Next.js');

  if (await waitForApp(`http://127.0.0.1:${appPort}/api/health`)) {
    say(`ready: ${appUrl}${demo ? `  (sign in as alice@example.com / ${DEMO_PASSWORD})` : ''}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[start] ${error instanceof Error ? error.message : String(error)}\n`);
  void shutdown(1, 'start-up failed');
});
