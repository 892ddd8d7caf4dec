/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter";
 * centrifuge-js `utils.ts backoff`): the delay before retry `attempt` (0-based) is uniform in
 * [0, min(cap, base · 2^attempt)). Spreading retries over the whole window is what keeps a
 * server restart from being answered by every tab at the same instant.
 */
export interface BackoffOptions {
  /** Upper bound of the first window, ms. */
  baseMs: number;
  /** Largest window, ms. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 15_000 };

export function fullJitterDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const window = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * window);
}

/**
 * The delay before retry `attempt` when the server named a minimum wait (`retry_after_ms=` in a
 * close reason, `retryAfterMs` in an error reply): that wait, plus the full-jitter delay on top,
 * so that tabs told the same floor still spread out after it.
 */
export function retryDelay(
  attempt: number,
  floorMs: number | null | undefined,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const floor = typeof floorMs === 'number' && Number.isFinite(floorMs) && floorMs > 0 ? Math.floor(floorMs) : 0;
  return floor + fullJitterDelay(attempt, options, random);
}
