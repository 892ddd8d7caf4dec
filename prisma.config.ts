import { defineConfig } from 'prisma/config';

// `env('DATABASE_URL')` throws when the variable is unset, even for `prisma generate`;
// reading process.env keeps generate working on a fresh clone.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'tsx scripts/db/seed.ts' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
