/**
 * A small protocol client for tests: connects, records every frame, and waits for the frames a
 * test expects. Waits are bounded so a missing frame fails the test instead of hanging it.
 */
import WebSocket, { type ClientOptions } from 'ws';
import { isPushFrame, subprotocolsFor, type ServerFrame } from '../../src/protocol/index.ts';

export type Frame = ServerFrame & Record<string, unknown>;

export interface ConnectOptions {
  token?: string;
  via?: 'header' | 'subprotocol' | 'query' | 'cookie';
  /** Subprotocols offered on the handshake (set for you with via 'subprotocol'). */
  protocols?: string[];
  cookieName?: string;
  headers?: Record<string, string>;
  path?: string;
  origin?: string;
  /** false: do not answer protocol pings (to test the heartbeat). */
  autoPong?: boolean;
}

export type CloseInfo = { code: number; reason: string };

const WAIT_MS = 5_000;
const PRESENCE_TYPES: ReadonlySet<string> = new Set(['viewers', 'creator_presence']);

export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<CloseInfo>;
  readonly #ws: WebSocket;
  #waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('error', () => {});
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(frame)) return true;
        waiter.resolve(frame);
        return false;
      });
    });
  }

  static open(baseUrl: string, options: ConnectOptions = {}): TestClient {
    const url = new URL(options.path ?? '/', baseUrl);
    const headers: Record<string, string> = { ...options.headers };
    let protocols = options.protocols ?? [];
    const token = options.token;
    if (token !== undefined) {
      const via = options.via ?? 'header';
      if (via === 'header') headers.authorization = `Bearer ${token}`;
      if (via === 'subprotocol') protocols = subprotocolsFor(token);
      if (via === 'query') url.searchParams.set('token', token);
      if (via === 'cookie') headers.cookie = `${options.cookieName ?? 'next-auth.session-token'}=${token}`;
    }
    const clientOptions: ClientOptions = { headers, autoPong: options.autoPong ?? true };
    if (options.origin) clientOptions.origin = options.origin;
    return new TestClient(new WebSocket(url, protocols, clientOptions));
  }

  /** Opens and waits for the `connected` frame. */
  static async connect(baseUrl: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = TestClient.open(baseUrl, options);
    const connected = client.next((f) => f.type === 'connected');
    const outcome = await Promise.race([connected, client.closed.then((info) => ({ closedWith: info }))]);
    if ('closedWith' in outcome) throw new Error(`closed before connected: ${JSON.stringify(outcome.closedWith)}`);
    return client;
  }

  /** Resolves with the HTTP status of a refused handshake, or rejects if it was accepted. */
  static handshakeStatus(baseUrl: string, options: ConnectOptions = {}): Promise<number> {
    const client = TestClient.open(baseUrl, options);
    return new Promise((resolve, reject) => {
      client.#ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        client.#ws.terminate();
      });
      client.#ws.once('open', () => {
        client.close();
        reject(new Error('handshake was accepted'));
      });
    });
  }

  get ws(): WebSocket {
    return this.#ws;
  }

  /** The first recorded or future frame that matches. */
  next(match: (frame: Frame) => boolean, timeoutMs = WAIT_MS): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, timeoutMs);
      const done = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.#waiters.push({ match, resolve: done });
    });
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.#ws.send(data, { binary: options.binary ?? false });
  }

  /** Sends a request with a fresh id and waits for the reply carrying that id. */
  async request(frame: Record<string, unknown>): Promise<Frame> {
    const id = this.#nextId++;
    this.sendRaw(JSON.stringify({ ...frame, id }));
    return this.next((f) => (f as { id?: unknown }).id === id && ['subscribed', 'unsubscribed', 'pong', 'refreshed', 'error'].includes(f.type));
  }

  subscribe(channel: string): Promise<Frame> {
    return this.request({ type: 'subscribe', channel });
  }

  async mustSubscribe(channel: string): Promise<void> {
    const reply = await this.subscribe(channel);
    if (reply.type !== 'subscribed') throw new Error(`subscribe ${channel} failed: ${JSON.stringify(reply)}`);
  }

  /**
   * Event pushes received, of one channel or all. Presence state (`viewers`, `creator_presence`),
   * which the server sends on post_ and creator_ channels by itself, is left out unless asked
   * for: tests of events count events.
   */
  pushes(channel?: string, { includePresence = false }: { includePresence?: boolean } = {}): Frame[] {
    return this.frames.filter(
      (f) => isPushFrame(f) && (channel === undefined || f.channel === channel) && (includePresence || !PRESENCE_TYPES.has(f.type)),
    );
  }

  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(1000);
  }
}
