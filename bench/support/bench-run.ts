/**
 * What the benchmarks that start a server need before and after it: users with session tokens
 * in the scratch database, and the Redis keys under the run's own prefix removed at the end.
 */
import type { Redis } from 'ioredis';

interface UserStore {
  prisma: { user: { createMany(args: { data: Array<{ id: string; email: string; name: string; passwordHash: string }> }): Promise<unknown> } };
}

/** `count` users named `<label><tag>u<i>`, created 2,000 at a time, each with a session token. */
export async function createUsersWithTokens(
  fixtures: UserStore,
  mint: (userId: string, options: { maxAgeSeconds: number }) => Promise<string>,
  count: number,
  label: string,
  tag: string,
): Promise<{ userIds: string[]; tokens: string[] }> {
  const userIds = Array.from({ length: count }, (_, i) => `${label}${tag}u${i}`);
  for (let i = 0; i < userIds.length; i += 2000) {
    await fixtures.prisma.user.createMany({
      data: userIds.slice(i, i + 2000).map((id, k) => ({ id, email: `${label}-${tag}-${i + k}@test.invalid`, name: `${label} ${i + k}`, passwordHash: 'not-a-real-hash' })),
    });
  }
  // Four hours: longer than any run, so no socket meets its token's end.
  const tokens = await Promise.all(userIds.map((id) => mint(id, { maxAgeSeconds: 4 * 3600 })));
  return { userIds, tokens };
}

/** Unlinks every key under `prefix` (this run's history streams and positions), in batches. */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}
