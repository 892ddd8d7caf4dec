/**
 * Origin check for upgrades. Browsers always send `Origin` on a WebSocket handshake, and the
 * session cookie travels with it, so without this check any site could open a socket as the
 * signed-in user (cross-site WebSocket hijacking). Non-browser clients (servers, the CLI) send
 * no Origin and authenticate with a token they hold, so a missing Origin is accepted.
 */
export function isOriginAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0 || origin === undefined) return true;
  const normalized = origin.trim().replace(/\/+$/, '').toLowerCase();
  return allowed.some((entry) => entry === '*' || entry.replace(/\/+$/, '').toLowerCase() === normalized);
}
