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
import { isOriginAllowed } from './auth/origin.ts';
import { extractSessionToken } from './auth/session-token.ts';
import type { SessionVerifier } from './auth/session-verifier.ts';
import type { Broker } from './broker/broker.ts';
import type { ChannelContext } from './channels/policy.ts';
import { Connection, type ConnectionLimits } from './connection.ts';
import type { Directory } from './data/directory.ts';
import { EventRouter } from './event-router.ts';
import { respondHealth } from './http/health.ts';
import { sendJson } from './http/body.ts';
import { createPublishHandler } from './http/publish.ts';
import { Hub } from './hub.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { CLOSE_CODES, WS_SUBPROTOCOL } from './protocol/index.ts';
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
}

export interface RealtimeServerDeps {
  broker: Broker;
  directory: Directory;
  verifier: SessionVerifier;
  metrics: Metrics;
  logger: Logger;
}

const WEBSOCKET_PATHS = new Set(['/', '/ws']);

export class RealtimeServer {
  readonly #options: RealtimeServerOptions;
  readonly #deps: RealtimeServerDeps;
  readonly #http: HttpServer;
  /** Optional loopback listener for /health and /metrics only (see METRICS_PORT). */
  #monitoring: HttpServer | undefined;
  readonly #wss: WebSocketServer;
  readonly #hub: Hub;
  readonly #connections = new Set<Connection>();
  readonly #batcher = new WriteBatcher();
  readonly #startedAt = Date.now();
  readonly #channelContext: ChannelContext;
  readonly #publish: (request: IncomingMessage, response: ServerResponse) => Promise<void>;
  #state: 'idle' | 'running' | 'closing' | 'closed' = 'idle';
  #heartbeat: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

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
    });
    this.#channelContext = { directory, now: () => new Date(), unreadNotificationsLimit: options.unreadNotificationsLimit };
    const router = new EventRouter(this.#hub, metrics, logger);
    broker.onMessage((channel, payload) => router.route(channel, payload));

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

  async listen(): Promise<number> {
    if (this.#state !== 'idle') throw new Error(`cannot listen in state ${this.#state}`);
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#options.port, this.#options.host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    this.#state = 'running';
    this.#heartbeat = setInterval(() => this.#beat(), this.#options.heartbeatIntervalMs);
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
    logger.info('shutting down', { connections: this.#connections.size });
    const listenerClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#batcher.flushAll();
    const sockets = [...this.#connections].map(
      (connection) =>
        new Promise<void>((resolve) => {
          connection.onceClosed(resolve);
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
      default:
        sendJson(response, 404, { error: 'not_found', message: `no route for ${route.slice(0, 100)}` });
    }
  }

  async #handleUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const { metrics, logger, verifier, directory } = this.#deps;
    socket.on('error', () => socket.destroy());
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (this.#state !== 'running') return rejectHandshake(socket, 503, 'Service Unavailable', metrics, 'closing');
    if (!WEBSOCKET_PATHS.has(path)) return rejectHandshake(socket, 404, 'Not Found', metrics, 'path');
    if (!isOriginAllowed(request.headers.origin, this.#options.allowedOrigins)) {
      logger.warn('origin refused', { origin: request.headers.origin?.slice(0, 200) });
      return rejectHandshake(socket, 403, 'Forbidden', metrics, 'origin');
    }

    // Auth failures complete the handshake and then close with 4001: browsers do not expose an
    // HTTP status on a failed handshake, but they do expose a close code.
    const found = extractSessionToken(request);
    const verdict = found ? await verifier.verify(found.token) : ({ ok: false, reason: 'missing' } as const);
    let userId: string | undefined;
    let failure: string | undefined = verdict.ok ? undefined : verdict.reason;
    if (verdict.ok) {
      try {
        if (await directory.userExists(verdict.userId)) userId = verdict.userId;
        else failure = 'unknown_user';
      } catch (error) {
        logger.error('user lookup failed during handshake', { error: (error as Error).message });
        return this.#upgradeThenClose(request, socket, head, CLOSE_CODES.internalError, 'try again later');
      }
    }
    if (this.#state !== 'running') return rejectHandshake(socket, 503, 'Service Unavailable', metrics, 'closing');
    if (userId === undefined) {
      metrics.handshakeRejections.inc({ reason: failure ?? 'unknown' });
      logger.info('authentication failed', { reason: failure, source: found?.source ?? 'none' });
      return this.#upgradeThenClose(request, socket, head, CLOSE_CODES.unauthorized, 'unauthorized');
    }
    const principal = { userId };
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      if (this.#state !== 'running') {
        ws.close(CLOSE_CODES.goingAway, 'server shutting down');
        return;
      }
      const connection = new Connection(ws, socket, principal, logger, {
        hub: this.#hub,
        channelContext: this.#channelContext,
        metrics,
        batcher: this.#batcher,
        limits: this.#options.limits,
      });
      this.#connections.add(connection);
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      connection.onceClosed(() => this.#connections.delete(connection));
    });
  }

  #upgradeThenClose(request: IncomingMessage, socket: Socket, head: Buffer, code: number, reason: string): void {
    this.#wss.handleUpgrade(request, socket, head, (ws) => ws.close(code, reason));
  }

  /** Pings every socket; a socket that has not answered the previous ping is dropped. */
  #beat(): void {
    for (const connection of this.#connections) {
      if (connection.awaitingPong) {
        this.#deps.logger.info('terminating unresponsive connection', { connId: connection.id });
        connection.terminate();
      } else {
        connection.ping();
      }
    }
  }
}

function rejectHandshake(socket: Socket, status: number, text: string, metrics: Metrics, reason: string): void {
  metrics.handshakeRejections.inc({ reason });
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
