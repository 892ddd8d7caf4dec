/**
 * One WebSocket connection speaking the server's protocol: requests carry an id and resolve
 * with the reply that echoes it; pushes are kept so a check can wait for one. Every wait is
 * bounded, so a silent server is reported as a failed check, never as a hang.
 */
import WebSocket from 'ws';
import type { ServerFrame } from '../../websocket-server/src/protocol/index.ts';

export type Frame = ServerFrame & Record<string, unknown>;
export type Outcome = { kind: 'open'; connection: Connection } | { kind: 'closed'; code: number; reason: string } | { kind: 'http'; status: number } | { kind: 'error'; message: string };

export interface ConnectOptions {
  url: string;
  origin: string;
  auth: 'cookie' | 'header' | 'query';
  token: string;
  /** Session cookie pairs as the app set them; sent instead of a single cookie when given. */
  cookies?: string[];
  timeoutMs: number;
}

const REPLY_TYPES = new Set(['subscribed', 'unsubscribed', 'pong', 'error']);

function cookieName(url: URL): string {
  // NextAuth prefixes the cookie with __Secure- over https; a browser sends it so to wss.
  return url.protocol === 'wss:' ? '__Secure-next-auth.session-token' : 'next-auth.session-token';
}

export class Connection {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #ws: WebSocket;
  #waiters: Array<{ match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }> = [];
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        return;
      }
      this.frames.push(frame);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(frame)) return true;
        waiter.resolve(frame);
        return false;
      });
    });
  }

  /** Opens a socket and waits for the `connected` frame, a close, or a refused handshake. */
  static open(options: ConnectOptions): Promise<Outcome> {
    const url = new URL(options.url);
    const headers: Record<string, string> = {};
    if (options.auth === 'cookie') {
      headers.cookie = (options.cookies ?? [`${cookieName(url)}=${options.token}`]).join('; ');
    } else if (options.auth === 'header') {
      headers.authorization = `Bearer ${options.token}`;
    } else {
      url.searchParams.set('token', options.token);
    }
    const ws = new WebSocket(url, { headers, origin: options.origin, handshakeTimeout: options.timeoutMs });
    const connection = new Connection(ws);
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve({ kind: 'error', message: `no connected frame in ${options.timeoutMs} ms` });
      }, options.timeoutMs);
      const settle = (outcome: Outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      ws.once('unexpected-response', (_request, response) => {
        settle({ kind: 'http', status: response.statusCode ?? 0 });
        ws.terminate();
      });
      // `on`, not `once`: a later error must not go unhandled (it would crash the process).
      ws.on('error', (error) => settle({ kind: 'error', message: error.message }));
      void connection.closed.then(({ code, reason }) => settle({ kind: 'closed', code, reason }));
      void connection.next((f) => f.type === 'connected', options.timeoutMs).then(
        () => settle({ kind: 'open', connection }),
        () => {},
      );
    });
  }

  next(match: (frame: Frame) => boolean, timeoutMs: number): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (frame: Frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`nothing in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push({ match, resolve: done });
    });
  }

  /** Sends `frame` with a fresh id; resolves with the reply that carries it. */
  request(frame: Record<string, unknown>, timeoutMs: number): Promise<Frame> {
    const id = this.#nextId++;
    this.#ws.send(JSON.stringify({ ...frame, id }));
    return this.next((f) => (f as { id?: unknown }).id === id && REPLY_TYPES.has(f.type), timeoutMs);
  }

  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(1000);
  }
}
