// A throwaway PostgreSQL database per test run: tests never touch a real or demo database,
// and parallel runs (or a concurrent dev server) cannot collide.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { applyMigrations } from '../../scripts/db/schema-engine.ts';

const DEFAULT_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function createScratchDatabase(): Promise<{
  url: string;
  name: string;
  drop(): Promise<void>;
}> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  const name = `fonana_test_${randomBytes(6).toString('hex')}`;
  // A plain client rather than a pool: one statement each, and nothing left to keep the
  // process alive afterwards.
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const drop = () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  try {
    await applyMigrations(url.toString());
  } catch (err) {
    await drop();
    throw err;
  }
  return { url: url.toString(), name, drop };
}
