/**
 * The address a connection comes from, for per-address limits. Behind nginx every connection
 * comes from 127.0.0.1, so with `TRUST_PROXY` the proxy's `X-Real-IP` (or the last hop of
 * `X-Forwarded-For`, the one the proxy appended) is used instead. Without it those headers are
 * ignored: a client could otherwise pick its own address and dodge the limit.
 */
import type { IncomingMessage } from 'node:http';

export function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const real = request.headers['x-real-ip'];
    if (typeof real === 'string' && real.trim()) return real.trim().slice(0, 64);
    const forwarded = request.headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.at(-1) : forwarded)?.split(',').at(-1)?.trim();
    if (last) return last.slice(0, 64);
  }
  return request.socket.remoteAddress ?? 'unknown';
}
