/**
 * How a client presents its session token on the upgrade. Server-side clients send
 * `Authorization: Bearer <token>`; a browser cannot set headers, so it offers the token as a
 * WebSocket subprotocol, `["fonana.v1", "bearer.<token>"]`, which keeps the token out of URLs
 * (and so out of proxy access logs). The server answers with `fonana.v1` only, never echoing
 * the token. `?token=` and the NextAuth session cookie are accepted as well.
 */

/** The protocol version a client must offer alongside a `bearer.` subprotocol. */
export const WS_SUBPROTOCOL = 'fonana.v1';
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';

/** Subprotocols for `new WebSocket(url, protocols)`; the JWE alphabet is valid in them. */
export function subprotocolsFor(token: string | null): string[] {
  return token ? [WS_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${token}`] : [WS_SUBPROTOCOL];
}
