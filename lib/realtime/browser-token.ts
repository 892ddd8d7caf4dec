/**
 * What the browser needs to open its socket: the URL, and a short-lived session token when the
 * socket is on another origin (the local default, app on :3000 and server on :3002), where the
 * httpOnly session cookie does not travel. Behind nginx (`WS_PUBLIC_URL=/ws`) the cookie does,
 * and no token is handed to scripts at all.
 */
import { encode } from 'next-auth/jwt';
import { env } from '../env.ts';

/** Lifetime of a realtime token, in seconds. It only has to outlive the handshake. */
export const REALTIME_TOKEN_TTL_SECONDS = 5 * 60;

/** Marks tokens minted here, so that the app refuses them as session cookies (see auth.ts). */
export const REALTIME_TOKEN_SCOPE = 'realtime';

export type RealtimeEndpoint = { url: string; token: string | null; expiresAt: number | null };

/**
 * `ws://<hostname the page was loaded from>:<port of WS_PUBLISH_URL>` (3002 by default): the
 * local setup, where the browser reaches the server on the same machine as this process does,
 * and both localhost and a LAN address work.
 */
function defaultUrl(request: Request, publishUrl: string): string {
  const host = request.headers.get('x-forwarded-host') ?? request.headers.get('host') ?? 'localhost';
  const hostname = new URL(`http://${host.split(',')[0]?.trim() || 'localhost'}`).hostname;
  const port = new URL(publishUrl).port || '80';
  return `ws://${hostname}:${port}`;
}

export async function realtimeEndpoint(request: Request, user: { id: string; name: string }): Promise<RealtimeEndpoint> {
  const { WS_PUBLIC_URL, WS_PUBLISH_URL, NEXTAUTH_SECRET } = env();
  if (WS_PUBLIC_URL?.startsWith('/')) return { url: WS_PUBLIC_URL, token: null, expiresAt: null };
  const token = await encode({
    token: { sub: user.id, name: user.name, scope: REALTIME_TOKEN_SCOPE },
    secret: NEXTAUTH_SECRET,
    maxAge: REALTIME_TOKEN_TTL_SECONDS,
  });
  return { url: WS_PUBLIC_URL ?? defaultUrl(request, WS_PUBLISH_URL), token, expiresAt: Date.now() + REALTIME_TOKEN_TTL_SECONDS * 1000 };
}
