/**
 * Timing DOM updates from inside the page. A MutationObserver installed before the action
 * records Date.now() when the condition first holds, so the measured latency is the page's own,
 * unaffected by how often the test polls or by the throttling of background tabs (Chromium
 * slows timers and requestAnimationFrame in tabs that are not in front).
 */
import type { Page } from 'playwright-core';

export type Condition =
  | { kind: 'count'; testId: string; value: number }
  | { kind: 'text'; selector: string; text: string }
  | { kind: 'none'; selector: string };

export interface Watch {
  /** Resolves with the page's Date.now() when the condition held; rejects after `timeoutMs`. */
  at(timeoutMs?: number): Promise<number>;
}

let nextKey = 0;

// In-page code as text: tsx (esbuild keepNames) would wrap named functions of a serialized
// callback in `__name(...)`, which does not exist in the page.
const INSTALL = `([key, c]) => {
  const holds = () => {
    if (c.kind === 'count') return document.querySelector('[data-testid=' + c.testId + ']')?.getAttribute('data-count') === String(c.value);
    if (c.kind === 'text') return [...document.querySelectorAll(c.selector)].some((el) => el.textContent?.includes(c.text));
    return document.querySelectorAll(c.selector).length === 0;
  };
  window.__e2eWatches ??= {};
  window.__e2eWatches[key] = new Promise((resolve) => {
    if (holds()) return resolve(Date.now());
    const observer = new MutationObserver(() => {
      if (!holds()) return;
      observer.disconnect();
      resolve(Date.now());
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}`;

export async function watchFor(page: Page, condition: Condition): Promise<Watch> {
  const key = `w${nextKey++}`;
  await page.evaluate(`(${INSTALL})(${JSON.stringify([key, condition])})`);
  return {
    async at(timeoutMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${JSON.stringify(condition)} did not hold within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return await Promise.race([
          page.evaluate(`window.__e2eWatches[${JSON.stringify(key)}]`) as Promise<number>,
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
