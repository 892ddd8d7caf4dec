/**
 * Reads a V8 CPU profile written by `npm run bench:compare -- --cpu-prof` (the project's server)
 * and prints where its time went: self and inclusive time per function, and every busy stretch
 * (consecutive samples without an idle one) of at least --busy-ms, with the functions that held
 * most of it. A stretch is a time the event loop could not deliver anything.
 *
 *   npx tsx bench/compare/analyze-profile.ts <file.cpuprofile> [--top 25] [--busy-ms 10]
 *       [--from-us T --to-us T]   (profile clock, µs: restrict to a window)
 *       [--wall-ms W --monotonic-us M]  (one instant on both clocks, from the JSON's probe
 *                                        clock, to print stretch starts on the wall clock)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    'busy-ms': { type: 'string', default: '10' },
    'from-us': { type: 'string' },
    'to-us': { type: 'string' },
    'wall-ms': { type: 'string' },
    'monotonic-us': { type: 'string' },
  },
});
const file = positionals[0];
if (!file) throw new Error('usage: analyze-profile.ts <file.cpuprofile>');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const TOP = Number(values.top);
const BUSY_US = Number(values['busy-ms']) * 1000;
const from = values['from-us'] ? Number(values['from-us']) : -Infinity;
const to = values['to-us'] ? Number(values['to-us']) : Infinity;
const toWall = (us: number) =>
  values['wall-ms'] && values['monotonic-us'] ? new Date(Number(values['wall-ms']) + (us - Number(values['monotonic-us'])) / 1000).toISOString().slice(11, 23) : `${((us - profile.startTime) / 1e6).toFixed(3)} s`;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/work\/main\//, '');
const keyOf = (node: Node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  return url ? `${functionName || '(anonymous)'} ${short(url)}:${lineNumber + 1}` : functionName || '(anonymous)';
};
const stackOf = (id: number) => {
  const keys: string[] = [];
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const node = byId.get(at)!;
    if (node.callFrame.functionName !== '(root)') keys.push(keyOf(node));
  }
  return keys; // leaf first
};

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let idle = 0;
type Stretch = { start: number; duration: number; samples: Array<[number, number]> };
const stretches: Stretch[] = [];
let current: Stretch | undefined;
let t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  const dt = profile.timeDeltas[i + 1] ?? 0; // the time until the next sample belongs to this one
  if (t < from || t > to) continue;
  const id = profile.samples[i]!;
  const leaf = byId.get(id)!;
  total += dt;
  if (leaf.callFrame.functionName === '(idle)') {
    idle += dt;
    if (current && current.duration >= BUSY_US) stretches.push(current);
    current = undefined;
    continue;
  }
  const stack = stackOf(id);
  self.set(stack[0] ?? '(unknown)', (self.get(stack[0] ?? '(unknown)') ?? 0) + dt);
  for (const key of new Set(stack)) inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  current ??= { start: t, duration: 0, samples: [] };
  current.duration += dt;
  current.samples.push([id, dt]);
}
if (current && current.duration >= BUSY_US) stretches.push(current);

const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;
const pct = (us: number) => `${((100 * us) / Math.max(1, total - idle)).toFixed(1)}%`;
console.log(`${file}\nprofiled ${ms(total)}, busy ${ms(total - idle)} (${((100 * (total - idle)) / Math.max(1, total)).toFixed(1)}%)`);
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title} (share of busy time)`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`  ${ms(us).padStart(10)} ${pct(us).padStart(6)}  ${key}`);
};
print('self time', self);
print('inclusive time', inclusive);

console.log(`\nbusy stretches ≥ ${ms(BUSY_US)}: ${stretches.length}`);
for (const stretch of stretches.sort((a, b) => b.duration - a.duration).slice(0, TOP)) {
  const within = new Map<string, number>();
  const selfWithin = new Map<string, number>();
  for (const [id, dt] of stretch.samples) {
    const stack = stackOf(id);
    selfWithin.set(stack[0] ?? '?', (selfWithin.get(stack[0] ?? '?') ?? 0) + dt);
    for (const key of new Set(stack)) within.set(key, (within.get(key) ?? 0) + dt);
  }
  const heavy = [...within].filter(([, us]) => us >= stretch.duration * 0.25).sort((a, b) => b[1] - a[1]).slice(0, 8);
  const topSelf = [...selfWithin].sort((a, b) => b[1] - a[1]).slice(0, 3);
  console.log(`  at ${toWall(stretch.start)}: ${ms(stretch.duration)}`);
  for (const [key, us] of heavy) console.log(`      ${ms(us).padStart(9)} in  ${key}`);
  for (const [key, us] of topSelf) console.log(`      ${ms(us).padStart(9)} self ${key}`);
}
