// `npm run db:migrate`: the equivalent of `prisma migrate deploy` (which needs the native
// schema engine we cannot install), applying prisma/migrations to $DATABASE_URL.
import { applyMigrations } from './schema-engine.ts';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/fonana)');
  process.exit(1);
}

const started = Date.now();
const { applied } = await applyMigrations(url, { log: (line) => console.log(line) });
console.log(
  applied.length === 0
    ? 'database is up to date, no migration applied'
    : `applied ${applied.length} migration(s) in ${Date.now() - started} ms`,
);
