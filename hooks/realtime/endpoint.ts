/**
 * Where the socket connects and with which credentials, from GET /api/realtime/token. A token
 * (cross-origin socket) is cached until shortly before it expires; a path URL (`/ws`, same
 * origin behind nginx) needs none: the httpOnly cookie goes with the upgrade.
 */
export type RealtimeEndpoint = { url: string; token: string | null; expiresAt: number | null };

export class SignedOutError extends Error {
  override readonly name = 'SignedOutError';
}

/** Fetch a new token this long before the cached one expires (ms). */
const REFRESH_MARGIN_MS = 30_000;

export function createEndpointSource(path = '/api/realtime/token') {
  let cached: RealtimeEndpoint | undefined;
  return {
    async get({ fresh = false }: { fresh?: boolean } = {}): Promise<RealtimeEndpoint> {
      const usable = cached && (cached.expiresAt === null || cached.expiresAt - REFRESH_MARGIN_MS > Date.now());
      if (usable && !fresh && cached) return cached;
      const response = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
      if (response.status === 401) throw new SignedOutError('not signed in');
      if (!response.ok) throw new Error(`${path} answered ${response.status}`);
      cached = (await response.json()) as RealtimeEndpoint;
      return cached;
    },
  };
}

/**
 * Absolute ws:// or wss:// URL. The token does not go in it: browsers cannot set headers, so
 * it travels as a subprotocol (see `subprotocolsFor`), which proxies do not write to their logs.
 */
export function socketUrl(endpoint: RealtimeEndpoint, location: { protocol: string; host: string }): string {
  const base = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
  return new URL(endpoint.url, base).toString();
}
