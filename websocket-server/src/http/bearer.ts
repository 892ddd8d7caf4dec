import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Constant-time comparison of two strings of any length (hashing equalizes the lengths). */
function secretsMatch(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** `Authorization: Bearer <secret>` with the expected secret. */
export function bearerMatches(request: IncomingMessage, secret: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization?.trim() ?? '');
  return Boolean(match?.[1] && secretsMatch(match[1], secret));
}
