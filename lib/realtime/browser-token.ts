/**
 * What the browser needs to open its socket: the URL, and a short-lived session token when the
 * socket is on another origin (the local default, app on :3000 and server on :3002), where the
 * httpOnly session cookie does not travel. Behind nginx (`WS_PUBLIC_URL=/ws`) the cookie does,
 * and no token is handed to scripts at all.
 *
 * The token carries the `sid` of the session that asked for it, so that signing out that
 * session closes the socket it opened (4003), and it lives REALTIME_TOKEN_TTL_SECONDS (5 min by
 * default): the server closes the socket at its `exp` (4002) unless the client sends a fresh one.
 */
import { encode } from 'next-auth/jwt';
import { env } from '../env.ts';

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

/**
 * `session`: the signed-in user, the `sid` of their session (undefined for a session token
 * minted before session ids existed; such a token can only be ended by "sign out everywhere")
 * and its `auth_time` (sign-in instant, seconds), both copied into the token.
 */
export async function realtimeEndpoint(
  request: Request,
  session: { user: { id: string; name: string }; sessionId: string | undefined; authTime?: number | undefined },
): Promise<RealtimeEndpoint> {
  const { WS_PUBLIC_URL, WS_PUBLISH_URL, NEXTAUTH_SECRET, REALTIME_TOKEN_TTL_SECONDS } = env();
  if (WS_PUBLIC_URL?.startsWith('/')) return { url: WS_PUBLIC_URL, token: null, expiresAt: null };
  const { user, sessionId, authTime } = session;
  // The token's `exp` is in whole seconds from encode's own clock read, which is this second or
  // a later one: this instant is never after it, so a client that refreshes by it is in time.
  const expiresAt = (Math.floor(Date.now() / 1000) + REALTIME_TOKEN_TTL_SECONDS) * 1000;
  const token = await encode({
    token: {
      sub: user.id,
      name: user.name,
      scope: REALTIME_TOKEN_SCOPE,
      ...(sessionId ? { sid: sessionId } : {}),
      ...(authTime !== undefined ? { auth_time: authTime } : {}),
    },
    secret: NEXTAUTH_SECRET,
    maxAge: REALTIME_TOKEN_TTL_SECONDS,
  });
  return { url: WS_PUBLIC_URL ?? defaultUrl(request, WS_PUBLISH_URL), token, expiresAt };
}
