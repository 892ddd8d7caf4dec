'use client';

/**
 * The admin page's live part: polls GET /api/admin/stats every `pollMs` (2 s, as often as the
 * nodes write their snapshots; polling rather than a socket subscription, because the figures
 * change continuously and a plain request needs no channel, no policy and no fan-out) and shows
 * the totals, one row per WebSocket node and the outbox backlog. A failed poll keeps the last
 * figures on screen, marked stale, and tries again at the next tick.
 */
import { useEffect, useState } from 'react';
import type { OpsStats } from '@/lib/admin/ops-stats.ts';
import styles from './AdminDashboard.module.css';

const mb = (bytes: number) => `${Math.round(bytes / 1_048_576)} MB`;
const seconds = (s: number | null) => (s === null ? '—' : s < 120 ? `${s} s` : s < 7_200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3_600)} h`);
const uptime = (startedAt: string, at: string) => seconds(Math.max(0, Math.round((Date.parse(at) - Date.parse(startedAt)) / 1000)));

function Tile({ label, value, testId, bad = false }: { label: string; value: number | string; testId: string; bad?: boolean }) {
  return (
    <div className={`${styles.tile} ${bad ? styles.bad : ''}`} data-testid={testId} data-value={value}>
      <strong>{value}</strong>
      <span>{label}</span>
    </div>
  );
}

export function AdminDashboard({ initial, pollMs }: { initial: OpsStats; pollMs: number }) {
  const [stats, setStats] = useState(initial);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const poll = async () => {
      try {
        const response = await fetch('/api/admin/stats', { cache: 'no-store', signal: controller.signal });
        if (response.status === 401 || response.status === 403) {
          // Signed out, or no longer an admin: stop asking.
          setProblem(response.status === 401 ? 'signed out' : 'no longer an admin');
          return;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        setStats((await response.json()) as OpsStats);
        setProblem(null);
      } catch (error) {
        if (stopped) return;
        setProblem(`update failed (${(error as Error).message}); retrying`);
      }
      if (!stopped) timer = setTimeout(() => void poll(), pollMs);
    };
    timer = setTimeout(() => void poll(), pollMs);
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller.abort();
    };
  }, [pollMs]);

  const { totals, nodes, outbox, websocket } = stats;
  return (
    <div className="stack" data-testid="admin-dashboard" data-updated-at={stats.at}>
      <div className={`${styles.status} ${problem ? styles.stale : ''}`} data-testid="admin-status">
        Updated {new Date(stats.at).toLocaleTimeString()} · every {pollMs / 1000} s
        {problem && ` · ${problem}`}
      </div>
      {websocket.status !== 'ok' && (
        <div className="card error" data-testid="admin-websocket-problem">
          WebSocket servers: {websocket.status === 'not_configured' ? 'no WS_PUBLISH_URL configured (the app reaches them only through Redis)' : `${websocket.error} (${websocket.url})`}
        </div>
      )}

      <div className={styles.tiles}>
        <Tile label="nodes" value={totals.nodes} testId="admin-total-nodes" bad={websocket.status === 'ok' && totals.nodes === 0} />
        <Tile label="connections" value={totals.connections} testId="admin-total-connections" />
        <Tile label="users (per node)" value={totals.users} testId="admin-total-users" />
        <Tile label="channels" value={totals.channels} testId="admin-total-channels" />
        <Tile label="events delivered / s" value={totals.deliveredPerSecond} testId="admin-delivered-per-second" />
        <Tile label="events received / s" value={totals.receivedPerSecond} testId="admin-received-per-second" />
        <Tile label="publish failures" value={totals.publishFailuresTotal} testId="admin-publish-failures" bad={totals.publishFailuresTotal > 0} />
        <Tile label="slow-consumer closes" value={totals.slowConsumerClosesTotal} testId="admin-slow-consumers" />
      </div>

      <h2>Outbox</h2>
      {outbox ? (
        <div className={styles.tiles}>
          <Tile label="unsent events" value={outbox.pending} testId="admin-outbox-pending" bad={outbox.pending > 0 && (outbox.oldestPendingAgeSeconds ?? 0) > 30} />
          <Tile label="oldest unsent" value={seconds(outbox.oldestPendingAgeSeconds)} testId="admin-outbox-oldest" />
          <Tile label="failed for good" value={outbox.failed} testId="admin-outbox-failed" bad={outbox.failed > 0} />
          <Tile label="most attempts" value={outbox.maxAttempts} testId="admin-outbox-attempts" />
        </div>
      ) : (
        <div className="card error" data-testid="admin-outbox-problem">
          The database did not answer.
        </div>
      )}
      {outbox?.lastError && <div className="muted">Last relay error: {outbox.lastError}</div>}

      <h2>Nodes</h2>
      <div className={styles.tableWrap}>
        <table className={styles.table} data-testid="admin-nodes">
          <thead>
            <tr>
              <th>node</th>
              <th>host / pid</th>
              <th>up</th>
              <th>connections</th>
              <th>users</th>
              <th>channels</th>
              <th>subscriptions</th>
              <th>delivered / s</th>
              <th>received / s</th>
              <th>delivered</th>
              <th>publish failures</th>
              <th>slow closes</th>
              <th>memory</th>
              <th>loop lag p99</th>
              <th>seen</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((node) => (
              <tr key={node.nodeId} data-testid="admin-node" data-node-id={node.nodeId}>
                <td>{node.nodeId}</td>
                <td>
                  {node.host} / {node.pid}
                </td>
                <td>{uptime(node.startedAt, node.writtenAt)}</td>
                <td data-testid="admin-node-connections" data-count={node.connections}>
                  {node.connections}
                </td>
                <td>{node.users}</td>
                <td>{node.channels}</td>
                <td>{node.subscriptions}</td>
                <td>{node.deliveredPerSecond}</td>
                <td>{node.receivedPerSecond}</td>
                <td>{node.eventsDeliveredTotal}</td>
                <td>{node.publishFailuresTotal}</td>
                <td>{node.slowConsumerClosesTotal}</td>
                <td>{mb(node.memory.rssBytes)}</td>
                <td>{node.eventLoopLagMs.p99} ms</td>
                <td>{(node.ageMs / 1000).toFixed(1)} s ago</td>
              </tr>
            ))}
            {nodes.length === 0 && (
              <tr>
                <td colSpan={15} className="muted">
                  No live node.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </div>
  );
}
