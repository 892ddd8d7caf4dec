/**
 * The HTTP + WebSocket server: routes plain HTTP (`/health`, `/metrics`, `/publish`),
 * authenticates upgrades on `/` and `/ws`, runs the heartbeat, and shuts down in order.
 *
 * States: running → closing → closed. While closing, new upgrades get 503 and `close()` called
 * again returns the same promise.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ControlHandler, type AccessCache } from './access/control-handler.ts';
import { Deadlines } from './access/deadlines.ts';
import { GrantRegistry } from './access/grants.ts';
import { auditAfterReconnect } from './access/reconnect-audit.ts';
import { Reauthorizer } from './access/reauthorizer.ts';
import { SessionRegistry } from './access/sessions.ts';
import { isOriginAllowed } from './auth/origin.ts';
import { SessionCheck, type SessionVerdict } from './auth/session-check.ts';
import { extractSessionToken } from './auth/session-token.ts';
import type { SessionVerifier } from './auth/session-verifier.ts';
import { Broadcaster, DEFAULT_BROADCAST_RETAIN_MS } from './broadcast.ts';
import type { Broker } from './broker/broker.ts';
import type { ChannelContext } from './channels/policy.ts';
import { CLOSE_GRACE_MS, Connection, type ConnectionDeps, type ConnectionLimits } from './connection.ts';
import type { Directory } from './data/directory.ts';
import { EventRouter } from './event-router.ts';
import { Continuity } from './history/continuity.ts';
import { createControlHandler } from './http/control.ts';
import { respondHealth } from './http/health.ts';
import { sendJson } from './http/body.ts';
import { createPositionHandler } from './http/position.ts';
import { createPublishHandler } from './http/publish.ts';
import { createStatsHandler } from './http/stats.ts';
import { Hub } from './hub.ts';
import { Admission, type AdmissionLimits, type AdmissionRefusal, type AdmissionTicket } from './limits/admission.ts';
import { KeyedBuckets } from './limits/keyed-buckets.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { LiveCounts } from './ops/node-stats.ts';
import type { NodeStatsStore } from './ops/stats-store.ts';
import type { Presence } from './presence/presence.ts';
import { PresenceTracker } from './presence/tracker.ts';
import { BROADCAST_CHANNEL, CLOSE_CODES, CONTROL_CHANNEL, WS_SUBPROTOCOL, closeReasonWithRetry } from './protocol/index.ts';
import { WriteBatcher } from './write-batcher.ts';

export interface RealtimeServerOptions {
  host: string;
  port: number;
  nodeId: string;
  allowedOrigins: readonly string[];
  publishSecret: string | undefined;
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  unreadNotificationsLimit: number;
  shutdownTimeoutMs: number;
  limits: ConnectionLimits;
  admission: AdmissionLimits;
  /** Subscribes per user per second on this process, and the burst allowed at once. */
  subscribesPerSecond: number;
  subscribeBurst: number;
  /** How long the latest operator broadcast is sent to sockets that connect after it (ms). */
  broadcastRetainMs?: number;
}

export interface RealtimeServerDeps {
  broker: Broker;
  directory: Directory;
  /** The directory's cache of access facts, if it has one: control messages invalidate it. */
  accessCache?: AccessCache;
  verifier: SessionVerifier;
  metrics: Metrics;
  logger: Logger;
  /** Presence store (presence/): Redis beside a Redis broker, in-process beside the in-process
   * one. Closed by the caller, like the broker. */
  presence: Presence;
  /** Every node's stats snapshots, for GET /stats (ops/). Without it /stats is 404. */
  nodeStats?: { store: NodeStatsStore; ttlMs: number };
}

const WEBSOCKET_PATHS = new Set(['/', '/ws']);
/**
 * The heartbeat interval is cut into ticks of about this many ms, each pinging one slice of
 * the sockets: at 10,000 sockets and 30 s, 300 ticks of ~33 pings. Measured by
 * bench/compare: 1,000 pings in one turn stalled delivery for 24–98 ms (10–31 µs of CPU each,
 * nearly all of it the socket write), which was the targeted scenario's p99.
 */
const HEARTBEAT_TICK_MS = 100;

export class RealtimeServer {
  readonly #options: RealtimeServerOptions;
  readonly #deps: RealtimeServerDeps;
  readonly #http: HttpServer;
  /** Optional loopback listener for /health and /metrics only (see METRICS_PORT). */
  #monitoring: HttpServer | undefined;
  readonly #wss: WebSocketServer;
  readonly #hub: Hub;
  readonly #connections = new Set<Connection>();
  /**
   * Sockets that are not (or not yet) connections: handshakes in progress and refused sockets
   * finishing their close. Shutdown ends these too, so it can never wait on a socket it does
   * not know.
   */
  readonly #untracked = new Set<Socket>();
  readonly #batcher: WriteBatcher;
  readonly #startedAt = Date.now();
  readonly #channelContext: ChannelContext;
  readonly #deadlines: Deadlines;
  readonly #sessions = new SessionRegistry();
  readonly #reauthorizer: Reauthorizer;
  readonly #control: ControlHandler;
  readonly #broadcaster: Broadcaster;
  readonly #sessionCheck: SessionCheck;
  readonly #admission: Admission;
  readonly #subscribeBudget: KeyedBuckets;
  readonly #continuity: Continuity;
  readonly #presence: PresenceTracker;
  readonly #publish: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  readonly #publishControl: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  readonly #position: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  readonly #stats: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  #state: 'idle' | 'running' | 'closing' | 'closed' = 'idle';
  #heartbeat: NodeJS.Timeout | undefined;
  /** Sockets per heartbeat tick; new sockets are dealt to the slices in turn. */
  #heartbeatSlices: Array<Set<Connection>> = [];
  #heartbeatSlice = 0;
  #nextSlice = 0;
  #closing: Promise<void> | undefined;
  #connectionDeps: ConnectionDeps | undefined;

  constructor(options: RealtimeServerOptions, deps: RealtimeServerDeps) {
    this.#options = options;
    this.#deps = deps;
    const { metrics, logger, broker, directory } = deps;
    this.#hub = new Hub(broker, logger, {
      joined: (kind) => {
        metrics.subscribed(kind, 1);
        metrics.channels.set(this.#hub.channelCount);
      },
      left: (kind) => {
        metrics.subscribed(kind, -1);
        metrics.channels.set(this.#hub.channelCount);
      },
      emptied: (channel) => this.#continuity.forget(channel),
    });
    const { presence } = deps;
    this.#presence = new PresenceTracker(presence, { logger, watched: () => this.#hub.channels() });
    this.#channelContext = { directory, now: () => new Date(), unreadNotificationsLimit: options.unreadNotificationsLimit, presence: this.#presence };
    this.#batcher = new WriteBatcher((error) => logger.error('a socket write failed; socket terminated', { error: (error as Error).message }));
    this.#deadlines = new Deadlines({ onError: (error) => logger.error('a deadline handler failed', { error: (error as Error).message }) });
    this.#reauthorizer = new Reauthorizer(new GrantRegistry(this.#deadlines));
    this.#control = new ControlHandler(this.#sessions, this.#reauthorizer, metrics, logger, deps.accessCache);
    this.#sessionCheck = new SessionCheck(deps.verifier, directory, this.#sessions);
    this.#admission = new Admission(options.admission);
    this.#subscribeBudget = new KeyedBuckets(options.subscribesPerSecond, options.subscribeBurst);
    this.#continuity = new Continuity(
      broker,
      {
        deliver: (channel, push) => this.#hub.deliver(channel, push.wire, push.event.offset),
        lost: (channel) => {
          for (const member of this.#hub.membersOf(channel)) (member as Connection).resubscribe(channel);
        },
        channels: () => this.#hub.channels(),
      },
      metrics,
      logger,
    );
    // After a Redis outage ioredis re-subscribes by itself, but what was published meanwhile
    // never reached this node: read it from history. A second pass a moment later catches what
    // was published between the re-SUBSCRIBE and its confirmation.
    // Control messages are not kept in history: what this node missed is re-checked instead.
    broker.onResubscribed(() => {
      // Invalidations may have been missed too: forget every cached access fact first.
      deps.accessCache?.clear();
      void this.#continuity.recoverAll();
      setTimeout(() => void this.#continuity.recoverAll(), 1_000).unref();
      void auditAfterReconnect({ sessions: this.#sessions, sessionCheck: this.#sessionCheck, reauthorizer: this.#reauthorizer }, logger);
    });
    const router = new EventRouter(this.#hub, this.#continuity, metrics, logger);
    // Presence announcements are transient events (no offset, not kept): the Redis store
    // PUBLISHes them from its announce script itself, the in-process one hands them over here.
    presence.onAnnouncement((channel, payload) => {
      broker.publish(channel, payload, { transient: true }).catch((error: Error) => logger.warn('presence announcement not published', { channel, error: error.message }));
    });
    this.#broadcaster = new Broadcaster(() => this.#connections, metrics, logger, { retainMs: options.broadcastRetainMs ?? DEFAULT_BROADCAST_RETAIN_MS });
    broker.onMessage((channel, payload) => {
      if (channel === CONTROL_CHANNEL) this.#control.handle(payload);
      else if (channel === BROADCAST_CHANNEL) this.#broadcaster.handle(payload);
      else router.route(channel, payload);
    });

    // noServer: the upgrade is authenticated here before ws sees it (ws README, "Client
    // authentication"). perMessageDeflate stays off: frames are small and compression costs
    // memory per socket.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Answer with the protocol version only: a `bearer.<token>` offer must never be echoed.
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    });
    this.#publish = createPublishHandler({ broker, secret: options.publishSecret, metrics, logger });
    this.#publishControl = createControlHandler({ broker, secret: options.publishSecret, logger });
    this.#position = createPositionHandler({ broker, secret: options.publishSecret });
    this.#stats = createStatsHandler({ nodeStats: deps.nodeStats, secret: options.publishSecret, nodeId: options.nodeId });
    this.#http = createServer((request, response) => {
      this.#route(request, response).catch((error: Error) => {
        logger.error('http handler failed', { path: request.url?.split('?')[0], error: error.message });
        if (!response.headersSent) sendJson(response, 500, { error: 'internal_error' });
        else response.destroy();
      });
    });
    this.#http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
      this.#handleUpgrade(request, socket, head).catch((error: Error) => {
        logger.error('upgrade failed', { error: error.message });
        socket.destroy();
      });
    });
    // Slowloris guard for plain HTTP; upgraded sockets are governed by the heartbeat instead.
    this.#http.headersTimeout = 10_000;
    this.#http.requestTimeout = 15_000;
  }

  get port(): number {
    return (this.#http.address() as AddressInfo | null)?.port ?? 0;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** What this node holds now, for its stats snapshot (ops/node-stats.ts). */
  liveCounts(): LiveCounts {
    return {
      connections: this.#connections.size,
      users: this.#sessions.userCount,
      channels: this.#hub.channelCount,
      subscriptions: this.#hub.subscriptionCount,
    };
  }

  async listen(): Promise<number> {
    if (this.#state !== 'idle') throw new Error(`cannot listen in state ${this.#state}`);
    // Control messages (sign-outs, entitlement changes) reach every node, whatever it holds.
    // Not awaited: with Redis down ioredis queues the SUBSCRIBE until it is back (and then
    // re-subscribes by itself), and the server must still start and serve (/health says so).
    this.#deps.broker.subscribe(CONTROL_CHANNEL).catch((error: Error) => {
      this.#deps.logger.warn('control channel not subscribed', { error: error.message });
    });
    // Operator broadcasts too: every socket of every node receives them (broadcast.ts).
    this.#deps.broker.subscribe(BROADCAST_CHANNEL).catch((error: Error) => {
      this.#deps.logger.warn('broadcast channel not subscribed', { error: error.message });
    });
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    this.#state = 'running';
    this.#presence.start();
    // The sweep is spread over the interval: one slice of the sockets per tick, so 10,000 pings
    // never leave in one event-loop turn (a latency spike for every event queued behind them).
    const slices = Math.max(1, Math.min(3_000, Math.round(this.#options.heartbeatIntervalMs / HEARTBEAT_TICK_MS)));
    this.#heartbeatSlices = Array.from({ length: slices }, () => new Set<Connection>());
    this.#heartbeat = setInterval(() => this.#beat(), Math.max(1, Math.floor(this.#options.heartbeatIntervalMs / slices)));
    this.#heartbeat.unref();
    return this.port;
  }

  /** Serves GET /health and GET /metrics of this process alone on `host:port`. */
  async listenMonitoring(port: number, host = '127.0.0.1'): Promise<number> {
    const monitoring = createServer((request, response) => {
      const path = new URL(request.url ?? '/', 'http://localhost').pathname;
      if (request.method !== 'GET' || (path !== '/health' && path !== '/metrics')) {
        sendJson(response, 404, { error: 'not_found', message: 'this listener serves GET /health and GET /metrics only' });
        return;
      }
      this.#route(request, response).catch((error: Error) => {
        this.#deps.logger.error('monitoring handler failed', { error: error.message });
        if (!response.headersSent) sendJson(response, 500, { error: 'internal_error' });
      });
    });
    await new Promise<void>((resolve, reject) => {
      monitoring.once('error', reject);
      monitoring.listen(port, host, () => resolve());
    });
    this.#monitoring = monitoring;
    return (monitoring.address() as AddressInfo).port;
  }

  /**
   * Stops accepting, closes every socket with 1001 (clients reconnect elsewhere), waits for them
   * up to `shutdownTimeoutMs`, then closes the HTTP server. The broker and database belong to
   * the caller (main.ts) and are closed there, after this resolves.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closing';
    clearInterval(this.#heartbeat);
    const { logger } = this.#deps;
    logger.info('shutting down', { connections: this.#connections.size, untracked: this.#untracked.size });
    const listenerClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#batcher.flushAll();
    // Handshakes in progress (awaiting the database, say) and refused sockets in their close
    // handshake are not connections: end them now, they would only be refused later.
    for (const socket of this.#untracked) socket.destroy();
    const sockets = [...this.#connections].map(
      (connection) =>
        new Promise<void>((resolve) => {
          connection.onceClosed(resolve);
          // Each close destroys its socket after CLOSE_GRACE_MS if the peer does not answer.
          connection.close(CLOSE_CODES.goingAway, 'server shutting down');
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(sockets).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#options.shutdownTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      logger.warn('shutdown timeout: terminating remaining sockets', { remaining: this.#connections.size });
      for (const connection of this.#connections) connection.terminate();
    }
    this.#deadlines.clear();
    // What is left of this node's presence goes now, not after PRESENCE_TTL_MS (bounded: a
    // Redis that does not answer must not hold the shutdown).
    await Promise.race([this.#presence.close(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    this.#http.closeAllConnections();
    await listenerClosed;
    if (this.#monitoring) {
      const monitoring = this.#monitoring;
      await new Promise<void>((resolve) => {
        monitoring.close(() => resolve());
        monitoring.closeAllConnections();
      });
    }
    this.#wss.close();
    this.#state = 'closed';
    logger.info('server closed');
  }

  async #route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const route = `${request.method} ${path}`;
    switch (route) {
      case 'GET /health':
        return respondHealth(
          response,
          {
            state: this.#state === 'idle' ? 'closed' : this.#state,
            nodeId: this.#options.nodeId,
            connections: this.#connections.size,
            channels: this.#hub.channelCount,
            subscriptions: this.#hub.subscriptionCount,
            uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
            broker: this.#deps.broker.health(),
          },
          () => this.#deps.directory.ping(),
        );
      case 'GET /metrics': {
        const { registry } = this.#deps.metrics;
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(await registry.metrics());
        return;
      }
      case 'POST /publish':
        return this.#publish(request, response);
      case 'POST /control':
        return this.#publishControl(request, response);
      case 'GET /position':
        return this.#position(request, response);
      case 'GET /stats':
        return this.#stats(request, response);
      default:
        sendJson(response, 404, { error: 'not_found', message: `no route for ${route.slice(0, 100)}` });
    }
  }

  async #handleUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const { metrics, logger } = this.#deps;
    // A shared listener: a closure here would keep this handshake's scope (its admission ticket)
    // alive as long as the socket.
    socket.on('error', destroyOnError);
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (this.#state !== 'running') return rejectHandshake(socket, 503, metrics, 'closing', 1);
    if (!WEBSOCKET_PATHS.has(path)) return rejectHandshake(socket, 404, metrics, 'path');
    if (!isOriginAllowed(request.headers.origin, this.#options.allowedOrigins)) {
      logger.warn('origin refused', { origin: request.headers.origin?.slice(0, 200) });
      return rejectHandshake(socket, 403, metrics, 'origin');
    }
    // Counters only, before any decryption or database work.
    const admitted = this.#admission.admit(request, this.#connections.size);
    if (!admitted.ok) return refuse(socket, admitted, metrics);
    this.#untracked.add(socket);
    metrics.pendingHandshakes.set(this.#admission.pending);
    const done = () => {
      admitted.release();
      this.#untracked.delete(socket);
      metrics.pendingHandshakes.set(this.#admission.pending);
    };
    try {
      await this.#authenticate(request, socket, head, admitted, done);
    } catch (error) {
      done();
      throw error;
    }
  }

  /**
   * Auth failures complete the handshake and then close with 4001: browsers do not expose an
   * HTTP status on a failed handshake, but they do expose a close code. `done` runs once the
   * socket is a connection or has been refused; it releases `ticket`.
   */
  async #authenticate(request: IncomingMessage, socket: Socket, head: Buffer, ticket: AdmissionTicket, done: () => void): Promise<void> {
    const { metrics, logger } = this.#deps;
    const seq = this.#sessions.seq;
    const found = extractSessionToken(request);
    const verified = found ? await this.#sessionCheck.verify(found.token) : ({ ok: false, reason: 'missing' } as const);
    let verdict: SessionVerdict | { ok: false; reason: 'missing' };
    if (verified.ok) {
      const { ok: _ok, ...session } = verified;
      // The per-user cap needs the user id: after decryption, still before the database. It
      // counts this user's handshakes in flight too (held until `done`).
      const overCap = ticket.claimUser(session.userId, this.#sessions.connectionsOf(session.userId));
      if (overCap) {
        done();
        return refuse(socket, overCap, metrics);
      }
      verdict = await this.#sessionCheck.confirm(session, seq);
    } else {
      verdict = verified;
    }
    if (this.#state !== 'running' || socket.destroyed) {
      done();
      return rejectHandshake(socket, 503, metrics, 'closing', 1);
    }
    // ws takes the socket from here and may end it without calling back (a malformed upgrade it
    // answers 400, a client that left while the database was read): the socket's end then gives
    // the pending slot back, or every such request would hold one for good.
    socket.once('close', done);
    if (!verdict.ok && verdict.reason === 'unavailable') {
      logger.error('session lookup failed during handshake (database slow or down)');
      metrics.handshakeRejections.inc({ reason: 'database' });
      return this.#upgradeThenClose(request, socket, head, CLOSE_CODES.tryAgainLater, closeReasonWithRetry('try again later', 2_000), done);
    }
    if (!verdict.ok) {
      metrics.handshakeRejections.inc({ reason: verdict.reason });
      logger.info('authentication failed', { reason: verdict.reason, source: found?.source ?? 'none' });
      return this.#upgradeThenClose(request, socket, head, CLOSE_CODES.unauthorized, 'unauthorized', done);
    }
    const { session, isCreator } = verdict;
    // The 101 response and the first frames ('connected', a retained broadcast) leave in one
    // write, not two: corked here, uncorked once the connection has queued them (a loopback
    // write costs tens of µs of CPU; bench/compare/connect-costs.ts). A refused upgrade ends the
    // socket, which uncorks it.
    socket.cork();
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      done();
      // Done has run: its close listener (holding the admission ticket) need not live on with
      // the socket.
      socket.removeListener('close', done);
      if (this.#state !== 'running') {
        ws.close(CLOSE_CODES.goingAway, 'server shutting down');
        socket.uncork();
        return;
      }
      // One deps object for every connection (Connection derives what it needs from it once).
      const connection = new Connection(ws, socket, session, logger, (this.#connectionDeps ??= {
        hub: this.#hub,
        broker: this.#deps.broker,
        continuity: this.#continuity,
        channelContext: this.#channelContext,
        metrics,
        batcher: this.#batcher,
        limits: this.#options.limits,
        reauthorizer: this.#reauthorizer,
        subscribeBudget: this.#subscribeBudget,
        sessions: this.#sessions,
        sessionCheck: this.#sessionCheck,
        deadlines: this.#deadlines,
        presence: this.#presence,
      }));
      const slice = this.#heartbeatSlices[this.#nextSlice];
      this.#nextSlice = (this.#nextSlice + 1) % Math.max(1, this.#heartbeatSlices.length);
      slice?.add(connection);
      this.#connections.add(connection);
      this.#broadcaster.welcome(connection);
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      // Only a creator's online state is ever shown (creator_ channels exist for creators only):
      // 10,000 other users' entries would cost a Redis write each per refresh, for nothing.
      if (isCreator) this.#presence.connected(session.userId);
      // Bound, not a closure: a closure made here would keep the whole handshake's scope alive.
      connection.onceClosed(this.#forget.bind(this, connection, slice));
      // Signed out while the database was being read: the announcement found no socket then.
      const voided = this.#sessions.voidedSince(seq, session);
      if (voided) connection.endSession(voided);
      connection.flush();
      socket.uncork();
    });
  }

  /** A connection's socket has closed: it leaves the server's bookkeeping. */
  #forget(connection: Connection, slice: Set<Connection> | undefined): void {
    slice?.delete(connection);
    this.#connections.delete(connection);
    this.#presence.disconnected(connection.userId);
  }

  /** Completes the handshake only to send a close code; the socket is destroyed soon after. */
  #upgradeThenClose(request: IncomingMessage, socket: Socket, head: Buffer, code: number, reason: string, done: () => void): void {
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      done();
      // Still tracked until it is gone, so shutdown can end it; ws alone would wait 30 s for the
      // peer's close frame.
      this.#untracked.add(socket);
      ws.once('close', () => this.#untracked.delete(socket));
      ws.close(code, reason);
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    });
  }

  /**
   * Pings one slice of the sockets (each socket once per interval); a socket that has not
   * answered its previous ping, one interval ago, is dropped.
   */
  #beat(): void {
    const slices = this.#heartbeatSlices;
    const slice = slices[this.#heartbeatSlice];
    this.#heartbeatSlice = (this.#heartbeatSlice + 1) % Math.max(1, slices.length);
    for (const connection of slice ?? []) {
      if (connection.awaitingPong) {
        this.#deps.logger.info('terminating unresponsive connection', { connId: connection.id });
        connection.terminate();
      } else {
        connection.ping();
      }
    }
  }

}

const STATUS_TEXT: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' };

function destroyOnError(this: Socket): void {
  this.destroy();
}

function rejectHandshake(socket: Socket, status: number, metrics: Metrics, reason: string, retryAfterSeconds?: number): void {
  metrics.handshakeRejections.inc({ reason });
  const retry = retryAfterSeconds === undefined ? '' : `Retry-After: ${retryAfterSeconds}\r\n`;
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\n${retry}Content-Length: 0\r\n\r\n`);
  // end() waits for the peer; a flood of refusals must not hold sockets open.
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

function refuse(socket: Socket, refusal: AdmissionRefusal, metrics: Metrics): void {
  rejectHandshake(socket, refusal.status, metrics, refusal.reason, refusal.retryAfterSeconds);
}
