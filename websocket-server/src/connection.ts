/**
 * One authenticated socket: parses each client frame, dispatches it, replies. Replies and pushes
 * share one outbound queue, so a `subscribed` reply always precedes the pushes of its channel.
 */
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { authorizeSubscription } from './channels/registry.ts';
import type { ChannelContext, Principal } from './channels/policy.ts';
import type { Hub, HubMember } from './hub.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import {
  CLOSE_CODES,
  parseClientFrame,
  type ClientFrame,
  type ErrorCode,
  type RequestId,
  type ServerFrame,
} from './protocol/index.ts';
import { TokenBucket } from './rate-limiter.ts';
import type { WriteBatcher } from './write-batcher.ts';
import { randomUUID } from 'node:crypto';

export interface ConnectionLimits {
  maxSubscriptions: number;
  framesPerSecond: number;
  frameBurst: number;
  maxBufferedBytes: number;
}

export interface ConnectionDeps {
  hub: Hub;
  channelContext: ChannelContext;
  metrics: Metrics;
  batcher: WriteBatcher;
  limits: ConnectionLimits;
}

export class Connection implements HubMember {
  readonly id = randomUUID();
  /** Set by the heartbeat when a ping goes out, cleared by the pong. */
  awaitingPong = false;
  readonly #ws: WebSocket;
  readonly #socket: Socket;
  readonly #principal: Principal;
  readonly #logger: Logger;
  readonly #deps: ConnectionDeps;
  readonly #bucket: TokenBucket;
  readonly #pendingSubscribes = new Set<string>();
  #outbound: Buffer[] = [];
  #closed = false;
  #socketClosed = false;

  constructor(ws: WebSocket, socket: Socket, principal: Principal, logger: Logger, deps: ConnectionDeps) {
    this.#ws = ws;
    this.#socket = socket;
    this.#principal = principal;
    this.#deps = deps;
    this.#logger = logger.child({ connId: this.id, userId: principal.userId });
    this.#bucket = new TokenBucket(deps.limits.framesPerSecond, deps.limits.frameBurst);
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.once('close', (code) => this.#onClose(code));
    ws.on('error', (error) => this.#logger.debug('socket error', { error: error.message }));
    this.send({ type: 'connected', userId: principal.userId, connectionId: this.id });
    this.#logger.info('connected');
  }

  get closed(): boolean {
    return this.#closed;
  }

  get userId(): string {
    return this.#principal.userId;
  }

  send(frame: ServerFrame): void {
    this.enqueue(Buffer.from(JSON.stringify(frame)));
  }

  enqueue(frame: Buffer): void {
    if (this.#closed) return;
    this.#outbound.push(frame);
    if (this.#outbound.length === 1) this.#deps.batcher.schedule(this);
  }

  flush(): void {
    const frames = this.#outbound;
    this.#outbound = [];
    if (this.#closed || frames.length === 0) return;
    if (this.#ws.bufferedAmount > this.#deps.limits.maxBufferedBytes) {
      this.#logger.warn('closing slow consumer', { bufferedBytes: this.#ws.bufferedAmount });
      this.close(CLOSE_CODES.slowConsumer, 'slow consumer');
      return;
    }
    this.#socket.cork();
    for (const frame of frames) this.#ws.send(frame, { binary: false, compress: false });
    this.#socket.uncork();
    this.#deps.metrics.messagesSent.inc(frames.length);
  }

  /** Runs `listener` once the socket has fully closed (at once if it already has). */
  onceClosed(listener: () => void): void {
    if (this.#socketClosed) listener();
    else this.#ws.once('close', () => listener());
  }

  ping(): void {
    this.awaitingPong = true;
    this.#ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(code, reason);
    this.#markClosed();
  }

  /** Drops the TCP connection without a close frame: for peers that stopped answering pings. */
  terminate(): void {
    this.#ws.terminate();
    this.#markClosed();
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outbound = [];
    this.#deps.hub.leaveAll(this);
  }

  #onClose(code: number): void {
    this.#socketClosed = true;
    const wasClosed = this.#closed;
    this.#markClosed();
    this.#deps.metrics.disconnects.inc({ code: String(code) });
    this.#deps.metrics.connections.dec();
    this.#logger.info('disconnected', { code, serverInitiated: wasClosed });
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    if (!this.#bucket.take()) {
      this.#logger.warn('closing: client exceeded its frame rate');
      this.close(CLOSE_CODES.rateLimited, 'rate limit exceeded');
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
      this.#logger.error('request failed', { frameType: parsed.frame.type, error: error.message });
      const channel = 'channel' in parsed.frame ? parsed.frame.channel : undefined;
      this.#replyError(parsed.frame.id, 'internal_error', 'the server could not complete the request; retry', channel);
    });
  }

  async #dispatch(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        this.send({ type: 'pong', ...withId(frame.id), ts: Date.now() });
        return;
      case 'subscribe':
        return this.#subscribe(frame.channel, frame.id);
      case 'unsubscribe':
        return this.#unsubscribe(frame.channel, frame.id);
      default: {
        const unreachable: never = frame;
        throw new Error(`unhandled frame ${JSON.stringify(unreachable)}`);
      }
    }
  }

  async #subscribe(channel: string, id: RequestId | undefined): Promise<void> {
    const { hub, channelContext, metrics, limits } = this.#deps;
    if (hub.isMember(this, channel)) {
      this.send({ type: 'subscribed', channel, ...withId(id) });
      return;
    }
    if (this.#pendingSubscribes.has(channel)) {
      this.#replyError(id, 'bad_request', 'a subscribe to this channel is already in progress', channel);
      return;
    }
    if (hub.channelsOf(this) + this.#pendingSubscribes.size >= limits.maxSubscriptions) {
      this.#replyError(id, 'too_many_subscriptions', `at most ${limits.maxSubscriptions} channels per connection`, channel);
      return;
    }
    this.#pendingSubscribes.add(channel);
    const stopTimer = metrics.subscribeDuration.startTimer();
    try {
      const decision = await authorizeSubscription(this.#principal, channel, channelContext);
      if (!decision.ok) {
        this.#replyError(id, decision.code, decision.message, channel);
        this.#logger.info('subscribe refused', { channel, code: decision.code });
        return;
      }
      const joined = await hub.join(this, channel, decision.channel.kind, () =>
        this.send({ type: 'subscribed', channel, ...withId(id) }),
      );
      if (!joined) return;
      // The snapshot is read after joining: an event published meanwhile is then delivered live
      // and may also appear in the snapshot (clients de-duplicate by id), but is never lost.
      const initial = await decision.policy.initialPush?.(this.#principal, decision.channel.id, channelContext);
      if (initial && !this.#closed) this.send({ ...initial, channel, id: randomUUID(), ts: Date.now() } as ServerFrame);
      this.#logger.debug('subscribed', { channel });
    } finally {
      this.#pendingSubscribes.delete(channel);
      stopTimer();
    }
  }

  async #unsubscribe(channel: string, id: RequestId | undefined): Promise<void> {
    if (!this.#deps.hub.leave(this, channel)) {
      this.#replyError(id, 'not_subscribed', 'this connection is not subscribed to that channel', channel);
      return;
    }
    this.send({ type: 'unsubscribed', channel, ...withId(id) });
  }

  #replyError(id: RequestId | undefined, code: ErrorCode, message: string, channel?: string): void {
    this.#deps.metrics.replyError(code);
    this.send({ type: 'error', ...withId(id), code, message, ...(channel === undefined ? {} : { channel }) });
  }
}

function withId(id: RequestId | undefined): { id?: RequestId } {
  return id === undefined ? {} : { id };
}

function rawToString(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
