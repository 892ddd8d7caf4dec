// The one way this project builds a PrismaClient: Prisma 7 has no built-in driver, so every
// client runs on the PrismaPg adapter (node-postgres pool). Shared by the Next.js app, the
// seed script and the tests, so pool settings live in one place.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client.ts';

export type { PrismaClient };

export function createPrismaClient(
  databaseUrl: string,
  opts: { poolMax?: number } = {},
): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    // pg's default is 10. Tests and scripts pass a small number; the embedded PGlite server
    // only accepts a handful of connections in total.
    max: opts.poolMax ?? 10,
    // pg keeps idle connections (and so the process) alive for 10 s by default; a short
    // timeout lets scripts and tests exit promptly even if they forget $disconnect().
    idleTimeoutMillis: 2_000,
  });
  return new PrismaClient({ adapter });
}
