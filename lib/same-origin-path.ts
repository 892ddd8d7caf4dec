/**
 * A redirect target taken from a query parameter, kept only if it stays on this site. Parsing
 * it as a URL (instead of testing its first characters) refuses every form a browser would
 * resolve elsewhere: `//evil.test`, `/\evil.test`, `https://evil.test`, tabs and newlines inside.
 */
const BASE = 'http://same-origin.invalid';

export function sameOriginPath(value: string | undefined, fallback = '/'): string {
  if (!value || !value.startsWith('/')) return fallback;
  let url: URL;
  try {
    url = new URL(value, BASE);
  } catch {
    return fallback;
  }
  return url.origin === BASE ? `${url.pathname}${url.search}${url.hash}` : fallback;
}
