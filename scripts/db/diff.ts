// `npm run db:diff -- <name>`: writes prisma/migrations/<timestamp>_<name>/migration.sql with
// the SQL that takes the existing migrations to prisma/schema.prisma. It replaces
// `prisma migrate dev --create-only`, which needs the native schema engine (see
// schema-engine.ts). Review the generated SQL, then apply it with `npm run db:migrate`.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { diffMigrationsToSchema, lockfileContent, migrationsDir } from './schema-engine.ts';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/i.test(name)) {
  console.error('usage: npm run db:diff -- <name>   (letters, digits and _ only)');
  process.exit(1);
}

const sql = await diffMigrationsToSchema();
if (!sql) {
  console.log('no changes: prisma/schema.prisma matches prisma/migrations');
} else {
  // Same UTC YYYYMMDDHHMMSS prefix as `prisma migrate dev`, so directories sort by creation.
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const dir = path.join(migrationsDir, `${stamp}_${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'migration.sql'), sql);
  // The engine reads the provider from this file; `prisma migrate deploy` requires it too.
  await writeFile(path.join(migrationsDir, 'migration_lock.toml'), lockfileContent);
  console.log(`wrote ${path.relative(process.cwd(), path.join(dir, 'migration.sql'))}`);
}
