/** The comparison table (Markdown) and the ratio chart (hand-written SVG) of bench/compare. */
import type { Target } from './protocol.ts';

export interface Row {
  scenario: string;
  label: string;
  unit: string;
  values: Partial<Record<Target, number>>;
  /** false when that server missed deliveries in this scenario. */
  complete: Partial<Record<Target, boolean>>;
}

const NAMES: Record<Target, string> = { project: 'project', socketio: 'Socket.IO', raw: 'raw ws' };

export function format(value: number | undefined, unit: string): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function ratio(row: Row): number {
  const a = row.values.project;
  const b = row.values.socketio;
  return a !== undefined && b !== undefined && b > 0 ? a / b : NaN;
}

export function renderTable(rows: Row[], targets: readonly Target[]): string {
  const withRatio = targets.includes('project') && targets.includes('socketio');
  const header = ['scenario', 'metric', ...targets.map((t) => NAMES[t]), ...(withRatio ? ['project ÷ Socket.IO'] : [])];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) {
    const cells = targets.map((t) => `${format(row.values[t], row.unit)}${row.complete[t] === false ? ' (INCOMPLETE)' : ''}`);
    const r = ratio(row);
    lines.push(`| ${row.scenario} | ${row.label} | ${cells.join(' | ')}${withRatio ? ` | ${Number.isFinite(r) ? `${r.toFixed(2)}×` : '–'}` : ''} |`);
  }
  return lines.join('\n');
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One bar per row: project ÷ Socket.IO on a log₂ axis around 1 (every metric: lower is better). */
export function renderSvg(rows: Row[], { title }: { title: string }): string {
  const plotted = rows.filter((row) => Number.isFinite(ratio(row)) && ratio(row) > 0);
  const labelWidth = 330;
  const plotWidth = 520;
  const right = 90;
  const rowHeight = 26;
  const top = 56;
  const width = labelWidth + plotWidth + right;
  const height = top + plotted.length * rowHeight + 46;
  const span = 4; // log₂: 1/16 … 16
  const center = labelWidth + plotWidth / 2;
  const x = (r: number) => center + (Math.max(-span, Math.min(span, Math.log2(r))) / span) * (plotWidth / 2);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  for (let e = -span; e <= span; e++) {
    const tx = x(2 ** e);
    const label = e < 0 ? `1/${2 ** -e}` : `${2 ** e}`;
    parts.push(`<line x1="${tx.toFixed(1)}" y1="${top - 8}" x2="${tx.toFixed(1)}" y2="${top + plotted.length * rowHeight}" stroke="${e === 0 ? '#333' : '#ddd'}" stroke-width="${e === 0 ? 1.5 : 1}"/>`);
    parts.push(`<text x="${tx.toFixed(1)}" y="${top - 12}" text-anchor="middle" fill="#555">${label}×</text>`);
  }
  plotted.forEach((row, i) => {
    const r = ratio(row);
    const y = top + i * rowHeight;
    const x1 = Math.min(center, x(r));
    const w = Math.max(1, Math.abs(x(r) - center));
    const colour = r <= 1 ? '#2e8b57' : '#c0392b';
    parts.push(`<text x="${labelWidth - 10}" y="${y + 17}" text-anchor="end">${escape(`${row.scenario}: ${row.label}`)}</text>`);
    parts.push(`<rect x="${x1.toFixed(1)}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowHeight - 10}" fill="${colour}"/>`);
    parts.push(`<text x="${labelWidth + plotWidth + 8}" y="${y + 17}">${r.toFixed(2)}×</text>`);
  });
  const legendY = top + plotted.length * rowHeight + 28;
  parts.push(`<text x="12" y="${legendY}" fill="#555">green: the project needs less (CPU, memory, time, latency) than Socket.IO; red: more. Values in bench/results/compare-*.json.</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
