/**
 * Where a server's CPU went, by cost centre rather than by function: reads a V8 CPU profile
 * (`npm run bench:compare -- --scenarios connect --cpu-prof`) and gives each sample to the
 * first thing on its stack, leaf upwards, that names an owner — a library under node_modules
 * (prisma, pg, jose, ws, winston, ioredis, …) or a project source file — so a socket write
 * issued by pg counts as database work, not as "writev". Samples spent loading modules
 * (startup) are left out; divide by --per (connections) for a per-connection cost.
 *
 *   npx tsx bench/compare/connect-costs.ts <file.cpuprofile> [--per 2000] [--top 30]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '30' } } });
const file = positionals[0];
if (!file) throw new Error('usage: connect-costs.ts <file.cpuprofile> [--per N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const per = Number(values.per);

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const STARTUP = /compileSourceTextModule|Module\._load|Module\._compile|ModuleJob|module_job|esm\/loader|esm\/hooks|cjs\/loader/;
function ownerOf(node: Node): string | undefined {
  const { url, functionName } = node.callFrame;
  const lib = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (lib) return lib[1]!.replace(/^@prisma\/.*/, 'prisma').replace(/^pg(-.*)?$/, 'pg').replace(/^(logform|winston.*)$/, 'winston');
  const own = /websocket-server\/src\/(.+)$/.exec(url);
  if (own) return `src/${own[1]}:${functionName || '(anonymous)'}`;
  if (url.startsWith('wasm://')) return 'prisma';
  if (/webcrypto|crypto\/(aes|util|keys|hkdf)/.test(url) || functionName === 'decrypt') return 'node crypto';
  return undefined;
}

const cost = new Map<string, number>();
let startup = 0;
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const leaf = byId.get(profile.samples[i]!)!;
  const name = leaf.callFrame.functionName;
  if (name === '(idle)' || name === '(program)' || name === '(root)') continue;
  let owner: string | undefined;
  let loading = false;
  for (let at: number | undefined = leaf.id; at !== undefined; at = parent.get(at)) {
    const node = byId.get(at)!;
    if (STARTUP.test(node.callFrame.functionName) || STARTUP.test(node.callFrame.url)) loading = true;
    owner ??= ownerOf(node);
  }
  if (loading) {
    startup += dt;
    continue;
  }
  busy += dt;
  const key = owner ?? (name === '(garbage collector)' ? '(garbage collector)' : `node: ${name}`);
  cost.set(key, (cost.get(key) ?? 0) + dt);
}

const fmt = (us: number) => (per > 1 ? `${(us / per).toFixed(0).padStart(6)} µs/conn` : `${(us / 1000).toFixed(1).padStart(8)} ms`);
console.log(`${file}\nbusy ${(busy / 1000).toFixed(0)} ms after startup (startup ${(startup / 1000).toFixed(0)} ms left out)${per > 1 ? `, = ${(busy / per).toFixed(0)} µs per connection over ${per}` : ''}`);
const grouped = new Map<string, number>();
for (const [key, us] of cost) {
  const group = key.startsWith('src/') ? key.slice(0, key.indexOf(':')) : key;
  grouped.set(group, (grouped.get(group) ?? 0) + us);
}
console.log('\nby owner');
for (const [key, us] of [...grouped].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${fmt(us)} ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
console.log('\nproject functions');
for (const [key, us] of [...cost].filter(([key]) => key.startsWith('src/')).sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${fmt(us)} ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${key}`);
