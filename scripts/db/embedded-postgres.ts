// A PostgreSQL without a server install: PGlite (Postgres compiled to WebAssembly, persisted
// in a directory) exposed on a TCP port through @electric-sql/pglite-socket, so that Prisma
// (PrismaPg), the migration wrapper, psql and other processes all reach it like any Postgres.
//
// Caveats: PGlite is a single Postgres backend. The socket server multiplexes its clients
// onto it one query at a time (a transaction holds it until it ends), so this is for
// development and demos, not for load. Everything connects as user `postgres`, database
// `postgres`, any password.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

export type EmbeddedPostgres = { url: string; stop(): Promise<void> };

export async function startEmbeddedPostgres(
  opts: { dataDir?: string; port?: number; host?: string; maxConnections?: number } = {},
): Promise<EmbeddedPostgres> {
  const { dataDir = './data/pglite', port = 5433, host = '127.0.0.1', maxConnections = 20 } = opts;
  const dir = path.resolve(dataDir);
  // PGlite creates the data directory itself but not its parent.
  await mkdir(path.dirname(dir), { recursive: true });
  const db = await PGlite.create(dir);
  // The socket server accepts ONE connection by default (the CLI's --max-connections=1);
  // a pg pool, the schema engine and a second process each need their own.
  const server = new PGLiteSocketServer({ db, host, port, maxConnections });
  try {
    await server.start();
  } catch (err) {
    await db.close();
    throw err;
  }
  // getServerConn() reports the bound port, so port 0 (any free port) works too.
  const url = `postgresql://postgres@${server.getServerConn()}/postgres`;
  let stopped: Promise<void> | undefined;
  return {
    url,
    // Closes client sockets, then the PGlite instance, which flushes it to dataDir.
    stop: () =>
      (stopped ??= (async () => {
        await server.stop();
        await db.close();
      })()),
  };
}

// `tsx scripts/db/embedded-postgres.ts [dataDir] [port]`: serve until Ctrl-C.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pg = await startEmbeddedPostgres({
    dataDir: process.argv[2],
    port: process.argv[3] ? Number(process.argv[3]) : undefined,
  });
  console.log(`embedded PostgreSQL (PGlite) at ${pg.url}`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void pg.stop().then(() => process.exit(0)));
  }
}
