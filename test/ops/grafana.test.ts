/**
 * ops/grafana/fonana-ws.json against what the server really exports: every metric name in
 * every panel's PromQL `expr` must be one that a running server (the real process, started by
 * startServer) lists on GET /metrics — a histogram as `_bucket`, `_sum` and `_count`, prom-client's
 * default process_ and nodejs_ metrics included — and every ws_ metric it exports has a panel.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { startServer, type ServerProcess } from '../../websocket-server/test/support/server-process.ts';
import { repoRoot } from './support/paths.ts';

const DASHBOARD = path.join(repoRoot, 'ops/grafana/fonana-ws.json');

interface Target {
  refId?: string;
  expr?: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}

/** Every panel, rows' nested panels (collapsed rows) included. */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers
 * `{…}`, ranges `[…]` and grouping clauses `by (…)` are gone, and that are not functions or
 * aggregations (followed by `(`), keywords or numbers. Grafana's `$variables` live in strings,
 * matchers and ranges, so they go with them.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*/g)) {
    const rest = stripped.slice(match.index + match[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Series names /metrics can carry: from `# TYPE` lines (with a histogram's and a summary's
 * suffixes, present even before a first observation) and from every sample line. */
export function exportedNames(text: string): { names: Set<string>; families: Map<string, string> } {
  const names = new Set<string>();
  const families = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      families.set(name, kind);
      names.add(name);
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return { names, families };
}

describe('Grafana dashboard (ops/grafana/fonana-ws.json) against /metrics', function () {
  this.timeout(30_000);

  let server: ServerProcess;
  let exported: ReturnType<typeof exportedNames>;
  let panels: Panel[];

  before(async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[]; uid: string };
    expect(dashboard.uid).to.equal('fonana-ws');
    panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
    server = await startServer({ broker: 'memory' });
    const response = await fetch(`${server.httpUrl}/metrics`);
    expect(response.status).to.equal(200);
    exported = exportedNames(await response.text());
  });

  after(async () => {
    await server?.stop();
  });

  it('reads metric names out of PromQL (functions, aggregations, labels, ranges, variables and numbers are not names)', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(ws_subscribe_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))',
      ),
    ).to.deep.equal(['ws_subscribe_duration_seconds_bucket']);
    expect(
      metricNames('sum by (kind) (rate(ws_access_cache_total{result="hit"}[5m])) / sum by (kind) (rate(ws_access_cache_total[5m])) * 100 or vector(1e3)'),
    ).to.deep.equal(['ws_access_cache_total']);
    expect(metricNames('process_resident_memory_bytes + on(instance) group_left nodejs_heap_size_used_bytes offset 5m > bool 2')).to.deep.equal([
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
    ]);
    expect(metricNames('{__name__="ws_connections"}')).to.deep.equal([]);
  });

  it('the running server exports what the dashboard is built on (histogram suffixes, prom-client defaults)', () => {
    for (const name of ['ws_connections', 'ws_subscribe_duration_seconds_bucket', 'ws_subscribe_duration_seconds_count', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(exported.names.has(name), name).to.equal(true);
    }
    expect(exported.names.has('ws_subscribe_duration_seconds_total')).to.equal(false);
  });

  it('every panel has PromQL targets, and every metric name in every expr is exported by the server', () => {
    expect(panels.length).to.be.at.least(20);
    const unknown: string[] = [];
    for (const panel of panels) {
      const exprs = (panel.targets ?? []).map((t) => t.expr ?? '').filter(Boolean);
      expect(exprs, `targets of "${panel.title}"`).to.not.be.empty;
      for (const expr of exprs) {
        const names = metricNames(expr);
        expect(names, `metric names in "${panel.title}": ${expr}`).to.not.be.empty;
        for (const name of names) if (!exported.names.has(name)) unknown.push(`"${panel.title}": ${name}`);
      }
    }
    expect(unknown, 'metrics named by panels but not exported by the server').to.deep.equal([]);
  });

  it('every ws_ metric the server exports is on some panel', () => {
    const used = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr ?? ''))));
    const families = [...exported.families.keys()].filter((name) => name.startsWith('ws_'));
    expect(families.length).to.be.at.least(20);
    const missing = families.filter((family) => ![family, `${family}_bucket`, `${family}_sum`, `${family}_count`].some((name) => used.has(name)));
    expect(missing, 'exported ws_ metrics without a panel').to.deep.equal([]);
  });

  it('the panels the operator asked for are there', () => {
    const titles = panels.map((p) => p.title);
    for (const title of [
      'Open connections',
      'Connect rate',
      'Handshake rejections by reason',
      'Subscriptions by channel kind',
      'Messages sent',
      'Broker events by outcome',
      'Publish failures (POST /publish)',
      'Reply errors by code',
      'Disconnects by close code',
      'Subscribe latency (p99, p50)',
      'Revocation latency (p99, p50)',
      'Re-checks by outcome',
      'Session closes by reason',
      'Slow consumers',
      'History recoveries',
      'Access cache hit rate',
      'Pending handshakes',
      'Memory',
      'CPU',
      'Event-loop lag (p99)',
    ]) {
      expect(titles, title).to.include(title);
    }
  });
});
