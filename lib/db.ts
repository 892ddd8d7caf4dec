/**
 * The app's PrismaClient, one per process. In development Next.js re-evaluates modules on every
 * edit; keeping the client on globalThis stops each reload from opening a new pool until
 * PostgreSQL (or the embedded PGlite, which accepts few connections) runs out of them.
 */
import { createPrismaClient, type PrismaClient } from './db/prisma-client.ts';
import { env } from './env.ts';

const globalForDb = globalThis as typeof globalThis & { __fonanaPrisma?: PrismaClient };

export function db(): PrismaClient {
  globalForDb.__fonanaPrisma ??= createPrismaClient(env().DATABASE_URL, { poolMax: env().DATABASE_POOL_MAX });
  return globalForDb.__fonanaPrisma;
}
