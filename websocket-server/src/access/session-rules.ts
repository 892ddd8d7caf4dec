/**
 * When a session token stops counting, decided in one place for the Next.js app (lib/auth.ts)
 * and the WebSocket server alike, so a cookie the app refuses is a token the server refuses.
 */

/**
 * "Sign out everywhere" stores a cutoff instant (ms). A token is void when it was issued at or
 * before it. `iat` has whole-second precision, so `iat * 1000 <= cutoff` also voids a token
 * issued later within the cutoff's own second: refusing a sign-in made in that second is the
 * safe side of the ambiguity.
 */
export function issuedBeforeCutoff(issuedAtMs: number, cutoff: Date | number | null | undefined): boolean {
  if (cutoff === null || cutoff === undefined) return false;
  const cutoffMs = typeof cutoff === 'number' ? cutoff : cutoff.getTime();
  return issuedAtMs <= cutoffMs;
}
