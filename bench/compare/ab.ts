/**
 * A/B of the project's server at two commits on the same machine state: the working tree (A)
 * against a checkout of `--base` (B, extracted with `git archive` into a temporary directory
 * that borrows this tree's node_modules and generated Prisma client), measured by
 * `bench:compare --targets project` runs in alternation A B A B …, so that a change in the load
 * other processes put on the machine hits both sides alike. Prints each round and the medians
 * of the burst CPU per delivery, the connect CPU per connection, the idle RSS / heap per
 * connection, and the CPU per delivery and p99 of the steady and targeted scenarios, for
 * whichever of them ran.
 *
 *   node --import tsx bench/compare/ab.ts --base HEAD [--rounds 3] [-- <bench:compare flags>]
 *   e.g. -- --scenarios connect,idle --connect-count 2000 --idle-connections 5000
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const separator = process.argv.indexOf('--');
const own = separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator);
const passOn = separator < 0 ? ['--scenarios', 'connect,idle'] : process.argv.slice(separator + 1);
const { values } = parseArgs({ args: own, options: { base: { type: 'string', default: 'HEAD' }, rounds: { type: 'string', default: '3' } } });
const root = fileURLToPath(new URL('../../', import.meta.url));
const baseCommit = execFileSync('git', ['-C', root, 'rev-parse', '--short', values.base]).toString().trim();

const stamp = new Date().toISOString().slice(11, 16).replace(':', '');
const baseDir = mkdtempSync(join(tmpdir(), `ab-${baseCommit}-`));
execFileSync('sh', ['-c', `git -C "${root}" archive ${baseCommit} websocket-server/src websocket-server/package.json websocket-server/tsconfig.json | tar -x -C "${baseDir}"`]);
for (const shared of ['node_modules', 'generated', 'lib', 'test', 'websocket-server/node_modules', 'package.json', 'tsconfig.json']) symlinkSync(join(root, shared), join(baseDir, shared));

type Figures = {
  burstUs?: number;
  connectUs?: number;
  idleRssKiB?: number;
  idleHeapKiB?: number;
  steadyUs?: number;
  steadyP99Ms?: number;
  targetedUs?: number;
  targetedP99Ms?: number;
};
type Delivery = { cpuUsPerDelivery?: number; latencyMs?: { p99?: number } };
const rounds: Array<{ side: 'A' | 'B'; figures: Figures }> = [];
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const side of ['A', 'B'] as const) {
      const tag = `ab-${stamp}-${side}${round}`;
      const env = { ...process.env, ...(side === 'B' ? { BENCH_PROJECT_ENTRY: join(baseDir, 'websocket-server/src/main.ts'), BENCH_COMMIT: baseCommit } : {}) };
      const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench/compare/main.ts'), '--targets', 'project', '--tag', tag, ...passOn], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      const wrote = /wrote (\S+\.json)/.exec(run.stdout ?? '');
      if (!wrote) throw new Error(`round ${round} ${side}: no result\n${run.stdout}`);
      const result = JSON.parse(readFileSync(wrote[1]!, 'utf8')) as { results: Record<string, { project?: Record<string, number> & Delivery }> };
      const { burst, connect, idle, steady, targeted } = result.results;
      const figures: Figures = {
        burstUs: burst?.project?.cpuUsPerDelivery,
        connectUs: connect?.project?.cpuUsPerConnection,
        idleRssKiB: idle?.project?.rssKiBPerConnection,
        idleHeapKiB: idle?.project?.heapKiBPerConnection,
        steadyUs: steady?.project?.cpuUsPerDelivery,
        steadyP99Ms: steady?.project?.latencyMs?.p99,
        targetedUs: targeted?.project?.cpuUsPerDelivery,
        targetedP99Ms: targeted?.project?.latencyMs?.p99,
      };
      rounds.push({ side, figures });
      console.log(`round ${round} ${side}: ${JSON.stringify(figures)}`);
    }
  }
} finally {
  rmSync(baseDir, { recursive: true, force: true });
}
const median = (xs: number[]) => {
  const sorted = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
};
for (const key of ['burstUs', 'connectUs', 'idleRssKiB', 'idleHeapKiB', 'steadyUs', 'steadyP99Ms', 'targetedUs', 'targetedP99Ms'] as const) {
  const a = median(rounds.filter((r) => r.side === 'A').map((r) => r.figures[key] ?? NaN));
  const b = median(rounds.filter((r) => r.side === 'B').map((r) => r.figures[key] ?? NaN));
  if (Number.isFinite(a) || Number.isFinite(b)) console.log(`${key.padEnd(12)} A (working tree) ${a.toFixed(1)}   B (${baseCommit}) ${b.toFixed(1)}   A/B ${(a / b).toFixed(2)}`);
}
