/**
 * Draws bench/results/compare.svg again from a results JSON of `npm run bench:compare` (a run
 * with --tag writes only its JSON, so that trial runs never replace the README's chart):
 *
 *   npx tsx bench/compare/chart.ts bench/results/compare-<date>-<tag>.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSvg, type Row } from './report.ts';

const file = process.argv[2];
if (!file) {
  console.error('usage: npx tsx bench/compare/chart.ts <results.json>');
  process.exit(2);
}
const run = JSON.parse(readFileSync(file, 'utf8')) as {
  startedAt: string;
  commit: string;
  machine: { cpus: number; node: string };
  targets: string[];
  rows: Row[];
};
if (!run.targets.includes('project') || !run.targets.includes('socketio')) {
  console.error(`${file}: the chart shows project ÷ Socket.IO, and this run lacks one of them (${run.targets.join(', ')})`);
  process.exit(1);
}
const date = run.startedAt.slice(0, 10);
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), '../results/compare.svg');
writeFileSync(out, renderSvg(run.rows, { title: `project ÷ Socket.IO, ${date}, ${run.commit} (${run.machine.cpus} cores, Node ${run.machine.node}); below 1 = project better` }));
console.log(`wrote ${path.relative(process.cwd(), out)} from ${file}`);
