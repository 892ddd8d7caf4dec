/**
 * Finds the NextAuth session token in an upgrade request. Sources, in order: the
 * `Authorization: Bearer` header, a `bearer.<token>` WebSocket subprotocol (browsers), the
 * `?token=` query parameter, then the session cookie in its
 * four spellings (`next-auth.session-token`, `__Secure-next-auth.session-token`, each possibly
 * split by next-auth into `.0`, `.1`, … chunks when larger than ~4 KB).
 */
import type { IncomingMessage } from 'node:http';
import { BEARER_SUBPROTOCOL_PREFIX } from '../protocol/index.ts';

export const SESSION_COOKIE_NAMES = ['__Secure-next-auth.session-token', 'next-auth.session-token'] as const;

export type TokenSource = 'header' | 'subprotocol' | 'query' | 'cookie';

export function parseCookieHeader(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // Leave undecodable values as they are; decryption will reject them.
    }
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/** Joins `name.0`, `name.1`, … in numeric order, the way next-auth's SessionStore does. */
function readChunkedCookie(cookies: Map<string, string>, name: string): string | undefined {
  const whole = cookies.get(name);
  if (whole) return whole;
  const chunks: Array<[number, string]> = [];
  for (const [key, value] of cookies) {
    if (!key.startsWith(`${name}.`)) continue;
    const index = Number(key.slice(name.length + 1));
    if (Number.isInteger(index) && index >= 0) chunks.push([index, value]);
  }
  if (chunks.length === 0) return undefined;
  chunks.sort((a, b) => a[0] - b[0]);
  return chunks.map(([, value]) => value).join('');
}

export function extractSessionToken(request: IncomingMessage): { token: string; source: TokenSource } | null {
  const authorization = request.headers.authorization;
  if (authorization) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match?.[1]) return { token: match[1], source: 'header' };
  }
  const offered = request.headers['sec-websocket-protocol'];
  if (offered) {
    const bearer = offered.split(',').map((p) => p.trim()).find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
    const token = bearer?.slice(BEARER_SUBPROTOCOL_PREFIX.length);
    if (token) return { token, source: 'subprotocol' };
  }
  const url = new URL(request.url ?? '/', 'http://localhost');
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return { token: fromQuery, source: 'query' };
  const cookies = parseCookieHeader(request.headers.cookie);
  for (const name of SESSION_COOKIE_NAMES) {
    const token = readChunkedCookie(cookies, name);
    if (token) return { token, source: 'cookie' };
  }
  return null;
}
