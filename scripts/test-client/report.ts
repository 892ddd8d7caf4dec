/** The result table: one row per check, then a summary line that CI and humans can grep. */

export type Status = 'PASS' | 'FAIL' | 'SKIP';

export interface CheckResult {
  name: string;
  expected: string;
  got: string;
  status: Status;
}

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (status: Status) => {
  if (!color) return status;
  const code = status === 'PASS' ? 32 : status === 'FAIL' ? 31 : 33;
  return `\u001b[${code}m${status}\u001b[0m`;
};

function clip(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `${text.slice(0, width - 1)}…`;
}

export function summary(results: readonly CheckResult[]): { passed: number; failed: number; skipped: number } {
  return {
    passed: results.filter((r) => r.status === 'PASS').length,
    failed: results.filter((r) => r.status === 'FAIL').length,
    skipped: results.filter((r) => r.status === 'SKIP').length,
  };
}

export function formatTable(results: readonly CheckResult[]): string {
  const nameWidth = Math.max(5, ...results.map((r) => r.name.length));
  const expectedWidth = Math.min(30, Math.max(8, ...results.map((r) => r.expected.length)));
  const gotWidth = Math.min(48, Math.max(3, ...results.map((r) => r.got.length)));
  const line = (n: string, e: string, g: string, s: string) => `  ${clip(n, nameWidth)}  ${clip(e, expectedWidth)}  ${clip(g, gotWidth)}  ${s}`;
  const rows = [line('CHECK', 'EXPECTED', 'GOT', 'RESULT'), `  ${'-'.repeat(nameWidth + expectedWidth + gotWidth + 12)}`];
  for (const r of results) rows.push(line(r.name, r.expected, r.got, paint(r.status)));
  const { passed, failed, skipped } = summary(results);
  // Prefixed, so a CI log that greps for a bare `N passed, N failed` line never takes this one.
  rows.push('', `test-client: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  return rows.join('\n');
}
