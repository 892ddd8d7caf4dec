/**
 * Prometheus metrics, in one registry per server instance (so several servers in one process,
 * as in tests, never collide). Exposed at `GET /metrics`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChannelKind, ErrorCode } from './protocol/index.ts';

export class Metrics {
  readonly registry = new Registry();

  readonly connections = new Gauge({
    name: 'ws_connections',
    help: 'Open authenticated WebSocket connections',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'ws_connections_total',
    help: 'Authenticated connections accepted since start',
    registers: [this.registry],
  });
  readonly handshakeRejections = new Counter({
    name: 'ws_handshake_rejections_total',
    help: 'Upgrades refused, by reason (limits: max_connections, pending_handshakes, address_rate, user_connections; auth: 4001 reasons; closing, path, origin, database)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly subscriptions = new Gauge({
    name: 'ws_subscriptions',
    help: 'Active subscriptions (connection × channel), by channel kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly channels = new Gauge({
    name: 'ws_channels',
    help: 'Channels with at least one local subscriber',
    registers: [this.registry],
  });
  readonly messagesSent = new Counter({
    name: 'ws_messages_sent_total',
    help: 'Frames written to sockets: pushes (one per subscriber per event) and replies',
    registers: [this.registry],
  });
  readonly eventsReceived = new Counter({
    name: 'ws_broker_events_total',
    help: 'Events received from the broker, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly broadcasts = new Counter({
    name: 'ws_broadcasts_total',
    help: 'Operator broadcasts received from the broker, by outcome (delivered, invalid)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly broadcastDeliveries = new Counter({
    name: 'ws_broadcast_deliveries_total',
    help: 'Broadcast frames queued for sockets: live (every open socket when it arrived) or at_connect (the retained notice, to a socket that connected later)',
    labelNames: ['when'] as const,
    registers: [this.registry],
  });
  readonly published = new Counter({
    name: 'ws_http_publish_total',
    help: 'POST /publish requests, by HTTP status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly replyErrors = new Counter({
    name: 'ws_reply_errors_total',
    help: 'Error replies sent to clients, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly disconnects = new Counter({
    name: 'ws_disconnects_total',
    help: 'Closed connections, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly subscribeDuration = new Histogram({
    name: 'ws_subscribe_duration_seconds',
    help: 'Time to authorize a subscription (database lookups included)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly pendingHandshakes = new Gauge({
    name: 'ws_pending_handshakes',
    help: 'Handshakes between the upgrade request and the connected frame (capped by MAX_PENDING_HANDSHAKES)',
    registers: [this.registry],
  });
  readonly controlMessages = new Counter({
    name: 'ws_control_messages_total',
    help: 'Control messages received (sign-outs, deleted accounts, entitlement changes), by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly rechecks = new Counter({
    name: 'ws_rechecks_total',
    help: 'Memberships re-checked after an entitlement change or a grant expiry, by outcome (kept, revoked, unavailable)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly revocationLatency = new Histogram({
    name: 'ws_revocation_latency_seconds',
    help: 'From the committed entitlement change (its announced time) to the unsubscribed frame',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly sessionCloses = new Counter({
    name: 'ws_session_closes_total',
    help: 'Sockets closed because their session ended (expired: 4002; session_revoked, user_sessions_revoked, user_deleted: 4003)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly refreshes = new Counter({
    name: 'ws_token_refreshes_total',
    help: 'refresh frames, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'ws_slow_consumers_total',
    help: 'Sockets closed because more than MAX_BUFFERED_BYTES waited for them',
    registers: [this.registry],
  });

  readonly recoveries = new Counter({
    name: 'ws_history_recoveries_total',
    help: 'Node-side recoveries from history (after a gap in live events or a broker reconnect), by outcome (recovered, lost, failed) and trigger',
    labelNames: ['outcome', 'trigger'] as const,
    registers: [this.registry],
  });
  readonly subscribeRecoveries = new Counter({
    name: 'ws_subscribe_recoveries_total',
    help: 'Subscribes with since, by outcome (recovered: every missed event replayed; reload: the client reloads its state)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly accessCache = new Counter({
    name: 'ws_access_cache_total',
    help: 'Access lookups (sessions, posts, subscriptions, purchases, creators) answered from the cache or the database',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  constructor(options: { collectProcessMetrics: boolean }) {
    if (options.collectProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }

  replyError(code: ErrorCode): void {
    this.replyErrors.inc({ code });
  }

  subscribed(kind: ChannelKind, delta: 1 | -1): void {
    this.subscriptions.inc({ kind }, delta);
  }
}
