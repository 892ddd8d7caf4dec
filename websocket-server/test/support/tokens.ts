/** Session tokens minted with next-auth's own `encode`, exactly as the Next.js app writes them. */
import { encode } from 'next-auth/jwt';
import { TEST_NEXTAUTH_SECRET } from '../../../test/support/env.ts';

export async function mintSessionToken(
  userId: string,
  options: { secret?: string; maxAgeSeconds?: number; claims?: Record<string, unknown> } = {},
): Promise<string> {
  return encode({
    token: { sub: userId, name: 'Test User', ...options.claims },
    secret: options.secret ?? TEST_NEXTAUTH_SECRET,
    maxAge: options.maxAgeSeconds ?? 60 * 60,
  });
}
