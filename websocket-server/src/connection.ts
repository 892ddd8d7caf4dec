/**
 * One authenticated socket: parses each client frame, dispatches it, replies, and enforces the
 * socket's own limits (frame rate, bytes waiting to be written, session lifetime). Channel
 * state lives in subscriptions.ts; replies and pushes share one outbound queue, written once
 * per event-loop turn (write-batcher.ts).
 *
 * Session lifetime: the socket closes with 4002 when its token's `exp` passes, unless the
 * client sent `{"type":"refresh","token":…}` with a fresh token of the same user first. A
 * session ended by the app (sign-out, sign out everywhere, deleted account) closes it with
 * 4003 (access/sessions.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import type { DeadlineHandle, Deadlines } from './access/deadlines.ts';
import type { SessionHolder, SessionMessage, SessionRegistry } from './access/sessions.ts';
import type { SessionCheck } from './auth/session-check.ts';
import type { VerifiedSession } from './auth/session-verifier.ts';
import { TokenBucket } from './limits/token-bucket.ts';
import type { Logger } from './logger.ts';
import { TypingRelay } from './messaging/typing.ts';
import type { Metrics } from './metrics.ts';
import { CLOSE_CODES, closeReasonWithRetry, parseClientFrame, type ClientFrame, type RequestId, type ServerFrame } from './protocol/index.ts';
import { Subscriptions, withId, type SubscriptionsDeps } from './subscriptions.ts';
import { frameText } from './ws-frame.ts';
import type { WriteBatcher } from './write-batcher.ts';

export interface ConnectionLimits {
  maxSubscriptions: number;
  framesPerSecond: number;
  frameBurst: number;
  maxBufferedBytes: number;
}

export interface ConnectionDeps extends Omit<SubscriptionsDeps, 'limits'> {
  batcher: WriteBatcher;
  limits: ConnectionLimits;
  sessions: SessionRegistry;
  sessionCheck: SessionCheck;
  deadlines: Deadlines;
}

/**
 * How long a closing socket may take to finish its close handshake before it is destroyed.
 * ws would wait 30 s; a peer that does not answer a close frame in a second is not coming back.
 */
export const CLOSE_GRACE_MS = 1_000;

/** Queued bytes that make a socket write before the end of the event-loop turn. */
const FLUSH_EARLY_BYTES = 64 * 1024;

/** Where a ws socket keeps its Connection, so one set of listeners serves every socket. */
const CONNECTION = Symbol('connection');
type Tagged = WebSocket & { [CONNECTION]: Connection };
/** Set in Connection's static block (they call its private methods). */
let onWsMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
let onWsClose: (this: WebSocket, code: number) => void;

/**
 * The Subscriptions dependencies derived from one ConnectionDeps: the server passes the same
 * deps object to every connection, so they are derived once, not copied per socket (bench/
 * heap-census.ts counted the copies among the objects an idle connection keeps).
 */
const subscriptionDeps = new WeakMap<ConnectionDeps, SubscriptionsDeps>();
function subscriptionDepsOf(deps: ConnectionDeps): SubscriptionsDeps {
  let derived = subscriptionDeps.get(deps);
  if (!derived) {
    derived = { ...deps, limits: { maxSubscriptions: deps.limits.maxSubscriptions, maxBufferedBytes: deps.limits.maxBufferedBytes } };
    subscriptionDeps.set(deps, derived);
  }
  return derived;
}

export class Connection implements SessionHolder {
  readonly id = randomUUID();
  /** Set by the heartbeat when a ping goes out, cleared by the pong. */
  awaitingPong = false;
  readonly logger: Logger;
  readonly #ws: WebSocket;
  readonly #socket: Socket;
  readonly #deps: ConnectionDeps;
  readonly #bucket: TokenBucket;
  readonly #subscriptions: Subscriptions;
  /** Made at the first typing frame: most sockets never send one. */
  #typing: TypingRelay | undefined;
  /** What runs once the socket has closed (server bookkeeping); one close listener for all. */
  #closeListeners: Array<() => void> | undefined;
  #session: VerifiedSession;
  #expiry: DeadlineHandle | undefined;
  #outbound: Buffer[] = [];
  #outboundBytes = 0;
  #closed = false;
  #socketClosed = false;

  constructor(ws: WebSocket, socket: Socket, session: VerifiedSession, logger: Logger, deps: ConnectionDeps) {
    this.#ws = ws;
    this.#socket = socket;
    this.#session = session;
    this.#deps = deps;
    this.logger = logger.child({ connId: this.id, userId: session.userId });
    this.#bucket = new TokenBucket(deps.limits.framesPerSecond, deps.limits.frameBurst);
    this.#subscriptions = new Subscriptions(this, subscriptionDepsOf(deps));
    // Shared listeners (module functions reaching the connection through the socket): no
    // closures per socket. ws emits 'close' once.
    (ws as Tagged)[CONNECTION] = this;
    ws.on('message', onWsMessage);
    ws.on('pong', onWsPong);
    ws.on('close', onWsClose);
    ws.on('error', onWsError);
    deps.sessions.add(this);
    this.#armExpiry();
    this.send({ type: 'connected', userId: session.userId, connectionId: this.id, expiresAt: session.expiresAt });
    // Debug, not info: at info this line and 'disconnected' cost ~200 µs of CPU per connection
    // (winston's formats; bench/compare/connect-costs.ts). ws_connections_total counts them.
    if (this.logger.isDebugEnabled()) this.logger.debug('connected', { expiresInMs: session.expiresAt - Date.now() });
  }

  static {
    // Inside the class body, so they may call the private handlers.
    onWsMessage = function (this: WebSocket, data: RawData, isBinary: boolean) {
      const connection = (this as Tagged)[CONNECTION];
      // Nothing a client sends may escape as an exception: thrown out of a ws listener it would
      // end the process and every other user's connection with it.
      try {
        connection.#onMessage(data, isBinary);
      } catch (error) {
        connection.logger.error('frame handling failed; connection closed', { error: (error as Error).message });
        connection.close(CLOSE_CODES.internalError, 'internal error');
      }
    };
    onWsClose = function (this: WebSocket, code: number) {
      (this as Tagged)[CONNECTION].#onClose(code);
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  get userId(): string {
    return this.#session.userId;
  }

  /** SessionHolder and SubscriptionOwner: the current session (replaced by each refresh). */
  get session(): VerifiedSession {
    return this.#session;
  }

  get principal(): { userId: string } {
    return this.#session;
  }

  send(frame: ServerFrame): void {
    this.sendWire(frameText(Buffer.from(JSON.stringify(frame))));
  }

  /** HubMember: a push of `channel`, which the channel's state may hold back. */
  enqueue(frame: Buffer, channel: string, offset?: number): void {
    if (this.#closed) return;
    this.#subscriptions.deliver(channel, frame, offset);
  }

  /** This node lost continuity on `channel` (see history/continuity.ts). */
  resubscribe(channel: string): void {
    this.#subscriptions.resubscribe(channel);
  }

  /** Queues a complete WebSocket frame; pushes arrive here framed once for every subscriber. */
  sendWire(frame: Buffer): void {
    if (this.#closed) return;
    this.#outbound.push(frame);
    this.#outboundBytes += frame.length;
    // A burst can queue megabytes within one event-loop turn (Redis hands over many messages per
    // read): past FLUSH_EARLY_BYTES, write now instead of at the end of the turn, so what waits
    // here stays small and the bound below is judged on real socket buffers.
    if (this.#outboundBytes >= FLUSH_EARLY_BYTES) {
      this.flush();
      return;
    }
    if (this.#outbound.length === 1) this.#deps.batcher.schedule(this);
  }

  /**
   * Writes the queued frames, corked into as few syscalls as possible. The slow-consumer bound is
   * checked before every frame, not once per batch, so a socket never holds more than
   * `maxBufferedBytes` the kernel has not taken. Corked bytes count in `bufferedAmount` too, so
   * before judging, the corked part is handed to the kernel (uncork) and measured again: a client
   * that reads keeps up, one that stopped reading fills the kernel buffer and is closed.
   */
  flush(): void {
    const frames = this.#outbound;
    this.#outbound = [];
    this.#outboundBytes = 0;
    if (this.#closed || frames.length === 0) return;
    // Frames are written straight to the TCP socket, already framed. ws writes its own frames
    // (pings, the close frame) synchronously to the same socket, so the order holds; after a
    // close began nothing more may follow the close frame.
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const max = this.#deps.limits.maxBufferedBytes;
    let written = 0;
    let overflowed = false;
    this.#socket.cork();
    try {
      for (const frame of frames) {
        if (this.#ws.bufferedAmount + frame.length > max) {
          this.#socket.uncork();
          this.#socket.cork();
          if (this.#ws.bufferedAmount + frame.length > max) {
            overflowed = true;
            break;
          }
        }
        this.#socket.write(frame);
        written++;
      }
    } finally {
      this.#socket.uncork();
    }
    this.#deps.metrics.messagesSent.inc(written);
    if (overflowed) this.overflow();
  }

  /** The client does not read fast enough: close with 4030 and let go of its buffers. */
  overflow(): void {
    if (this.#closed) return;
    this.logger.warn('closing slow consumer', { bufferedBytes: this.#ws.bufferedAmount, maxBufferedBytes: this.#deps.limits.maxBufferedBytes });
    this.#deps.metrics.slowConsumers.inc();
    // Nothing more is written; the close frame queues behind the unread data, and the socket is
    // destroyed after CLOSE_GRACE_MS if the client does not read up to it by then.
    this.close(CLOSE_CODES.slowConsumer, closeReasonWithRetry('slow consumer', 1_000));
  }

  /** Runs `listener` once the socket has fully closed (at once if it already has). */
  onceClosed(listener: () => void): void {
    if (this.#socketClosed) listener();
    else (this.#closeListeners ??= []).push(listener);
  }

  ping(): void {
    this.awaitingPong = true;
    this.#ws.ping();
  }

  /**
   * Writes what is queued (an error reply that explains the close, say), then sends a close
   * frame; the socket is destroyed if the peer has not completed the close in `graceMs`.
   */
  close(code: number, reason: string, graceMs = CLOSE_GRACE_MS): void {
    if (!this.#closed && code !== CLOSE_CODES.slowConsumer) this.flush();
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(code, reason);
    this.#markClosed();
    if (!this.#socketClosed) setTimeout(() => this.#ws.terminate(), graceMs).unref();
  }

  /** Drops the TCP connection without a close frame: for peers that stopped answering pings. */
  terminate(): void {
    this.#ws.terminate();
    this.#markClosed();
  }

  /** SessionHolder: the app ended this session. */
  endSession(message: SessionMessage): void {
    this.logger.info('session ended by the app', { cause: message.type });
    this.#deps.metrics.sessionCloses.inc({ reason: message.type });
    this.close(CLOSE_CODES.sessionRevoked, sessionRevokedReason(message));
  }

  #armExpiry(): void {
    this.#expiry?.cancel();
    this.#expiry = this.#deps.deadlines.schedule(this.#session.expiresAt, () => {
      if (this.#closed) return;
      this.logger.info('session token expired');
      this.#deps.metrics.sessionCloses.inc({ reason: 'expired' });
      this.close(CLOSE_CODES.sessionExpired, 'session expired: refresh the token before expiresAt');
    });
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbound = [];
    this.#outboundBytes = 0;
    this.#expiry?.cancel();
    this.#deps.sessions.remove(this);
    this.#subscriptions.clear();
    this.#deps.hub.leaveAll(this);
  }

  #onClose(code: number): void {
    this.#socketClosed = true;
    const wasClosed = this.#closed;
    this.#markClosed();
    this.#deps.metrics.disconnects.inc({ code: String(code) });
    this.#deps.metrics.connections.dec();
    if (this.logger.isDebugEnabled()) this.logger.debug('disconnected', { code, serverInitiated: wasClosed });
    const listeners = this.#closeListeners;
    this.#closeListeners = undefined;
    for (const listener of listeners ?? []) listener();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    if (!this.#bucket.take()) {
      this.logger.warn('closing: client exceeded its frame rate');
      this.close(CLOSE_CODES.rateLimited, 'rate limit exceeded; retry_after_ms=1000');
      return;
    }
    if (isBinary) {
      this.#replyError(undefined, 'bad_request', 'binary frames are not supported; send JSON text');
      return;
    }
    const parsed = parseClientFrame(rawToString(data));
    if (!parsed.ok) {
      this.#replyError(parsed.id, 'bad_request', parsed.message);
      return;
    }
    void this.#dispatch(parsed.frame).catch((error: Error) => {
      this.logger.error('request failed', { frameType: parsed.frame.type, error: error.message });
      const channel = 'channel' in parsed.frame ? parsed.frame.channel : undefined;
      this.#replyError(parsed.frame.id, 'internal_error', 'the server could not complete the request; retry', channel, 1_000);
    });
  }

  async #dispatch(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        this.send({ type: 'pong', ...withId(frame.id), ts: Date.now() });
        return;
      case 'subscribe':
        return this.#subscriptions.subscribe(frame.channel, frame.id, {
          ...(frame.since ? { since: frame.since } : {}),
          ...(frame.lastNotificationId ? { lastNotificationId: frame.lastNotificationId } : {}),
        });
      case 'unsubscribe':
        return this.#subscriptions.unsubscribe(frame.channel, frame.id);
      case 'refresh':
        return this.#refresh(frame.token, frame.id);
      case 'typing':
        this.#typing ??= new TypingRelay(this, { directory: this.#deps.channelContext.directory, broker: this.#deps.broker, metrics: this.#deps.metrics });
        return this.#typing.handle(frame);
      default: {
        const unreachable: never = frame;
        throw new Error(`unhandled frame ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * A fresh token of the same user extends the socket's life to the new `exp`. Anything else
   * (invalid, expired, revoked, another user's) is answered `unauthorized` and the socket closes
   * with 4001: a client that holds a bad token must not keep the old session going.
   */
  async #refresh(token: string, id: RequestId | undefined): Promise<void> {
    const { sessionCheck, metrics } = this.#deps;
    const verdict = await sessionCheck.check(token);
    if (this.#closed) return;
    if (verdict.ok && verdict.session.userId === this.#session.userId) {
      this.#session = verdict.session;
      this.#armExpiry();
      metrics.refreshes.inc({ outcome: 'ok' });
      this.send({ type: 'refreshed', ...withId(id), expiresAt: verdict.session.expiresAt });
      return;
    }
    if (!verdict.ok && verdict.reason === 'unavailable') {
      // The database could not say; the current token still holds until its own expiry.
      metrics.refreshes.inc({ outcome: 'unavailable' });
      this.#replyError(id, 'internal_error', 'could not check the token now; retry', undefined, 1_000);
      return;
    }
    const why = verdict.ok ? 'another_user' : verdict.reason;
    metrics.refreshes.inc({ outcome: why });
    this.logger.info('refresh refused', { reason: why });
    this.#replyError(id, 'unauthorized', 'refresh refused: the token is not a valid session of this user');
    this.close(CLOSE_CODES.unauthorized, 'unauthorized');
  }

  #replyError(id: RequestId | undefined, code: 'bad_request' | 'internal_error' | 'unauthorized', message: string, channel?: string, retryAfterMs?: number): void {
    this.#deps.metrics.replyError(code);
    this.send({
      type: 'error',
      ...withId(id),
      code,
      message,
      ...(channel === undefined ? {} : { channel }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
}

function onWsPong(this: WebSocket): void {
  (this as Tagged)[CONNECTION].awaitingPong = false;
}
function onWsError(this: WebSocket, error: Error): void {
  (this as Tagged)[CONNECTION].logger.debug('socket error', { error: error.message });
}

function sessionRevokedReason(message: SessionMessage): string {
  switch (message.type) {
    case 'session_revoked':
      return 'signed out';
    case 'user_sessions_revoked':
      return 'signed out everywhere';
    case 'user_deleted':
      return 'account deleted';
  }
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
