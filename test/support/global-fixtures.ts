/**
 * Once per `npm test`: a scratch PostgreSQL database (migrated) and a Redis channel prefix of its
 * own, handed to every test and every child process through the environment. Both are removed
 * at the end, whatever the outcome. Never the demo data.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createScratchDatabase } from './scratch-database.ts';

let dropDatabase: (() => Promise<void>) | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const database = await createScratchDatabase();
  dropDatabase = database.drop;
  process.env.TEST_DATABASE_URL = database.url;
  process.env.TEST_REDIS_URL ??= 'redis://127.0.0.1:6379';
  process.env.TEST_REDIS_PREFIX = `test:${randomBytes(6).toString('hex')}:`;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropDatabase?.();
  // Pub/sub leaves no keys, but anything a test stored under the prefix goes too.
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  try {
    await redis.connect();
    const prefix = process.env.TEST_REDIS_PREFIX;
    if (prefix) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } catch {
    // Redis absent: nothing was stored there either.
  } finally {
    redis.disconnect();
  }
}
