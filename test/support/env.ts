/** Values set by global-fixtures.ts for this test run. */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is unset: run the tests through mocha (npm test)');
  return url;
}

export function testRedisUrl(): string {
  return process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A Redis channel prefix unique to this run; `suffix` separates suites further. */
export function testRedisPrefix(suffix = ''): string {
  const prefix = process.env.TEST_REDIS_PREFIX;
  if (!prefix) throw new Error('TEST_REDIS_PREFIX is unset: run the tests through mocha (npm test)');
  return `${prefix}${suffix}`;
}

export const TEST_NEXTAUTH_SECRET = 'test-nextauth-secret-0123456789abcdef';
export const TEST_PUBLISH_SECRET = 'test-publish-secret';
