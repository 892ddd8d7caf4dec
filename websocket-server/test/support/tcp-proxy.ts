/**
 * A pausable TCP proxy for tests that need a slow or stalled Redis or PostgreSQL: listens on a
 * free port, opens one upstream connection per client and pipes both ways.
 *
 * - `pause()` stops forwarding in both directions; what arrives meanwhile is held in order and
 *   forwarded by `resume()`. New clients are still accepted (and held) while paused.
 * - `delay(ms)` holds client→upstream data for `ms` before forwarding it (0 turns it off), so a
 *   request is really in flight when the test acts; order is kept.
 * - `close()` destroys the listener and every connection.
 *
 * Give the server `127.0.0.1:<proxy.port>` in place of the real address.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface ProxyTarget {
  host?: string;
  port: number;
}

/** One direction of one proxied connection: chunks queued with the time they may leave. */
class Pipe {
  readonly #queue: Array<{ chunk: Buffer; dueAt: number }> = [];
  /** Bytes received and not yet forwarded (paused or delayed). */
  heldBytes = 0;
  readonly #to: Socket;
  readonly #proxy: TcpProxy;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;

  /** True for the client→upstream direction. */
  readonly upstream: boolean;

  constructor(from: Socket, to: Socket, proxy: TcpProxy, delayed: boolean) {
    this.upstream = delayed;
    this.#to = to;
    this.#proxy = proxy;
    from.on('data', (chunk: Buffer) => {
      this.#queue.push({ chunk, dueAt: Date.now() + (delayed ? proxy.delayMs : 0) });
      this.heldBytes += chunk.length;
      this.pump();
    });
    from.once('end', () => {
      this.#ended = true;
      this.pump();
    });
  }

  /** Forwards every chunk that is due, in order; ends the far side once the near one ended. */
  pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#proxy.paused || this.#to.destroyed) return;
    const now = Date.now();
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.dueAt > now) {
        this.#timer = setTimeout(() => this.pump(), head.dueAt - now);
        return;
      }
      this.#queue.shift();
      this.heldBytes -= head.chunk.length;
      this.#to.write(head.chunk);
    }
    if (this.#ended) this.#to.end();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
    this.heldBytes = 0;
  }
}

export class TcpProxy {
  readonly #server: Server;
  readonly #target: Required<ProxyTarget>;
  readonly #sockets = new Set<Socket>();
  readonly #clients = new Set<Socket>();
  readonly #pipes = new Set<Pipe>();
  #paused = false;
  #delayMs = 0;
  #accepted = 0;

  private constructor(target: Required<ProxyTarget>) {
    this.#target = target;
    // Half-open allowed on both sides: an end (FIN) travels through the pipe like data, so a
    // paused proxy holds a close too, as a stalled link would.
    this.#server = createServer({ allowHalfOpen: true }, (client) => this.#accept(client));
  }

  /** Starts a proxy to `target` on a free port of 127.0.0.1. */
  static async start(target: ProxyTarget): Promise<TcpProxy> {
    const proxy = new TcpProxy({ host: target.host ?? '127.0.0.1', port: target.port });
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** Proxies the host and port of `url` (redis://…, postgresql://…) and returns the same URL
   * pointing at the proxy. */
  static async forUrl(url: string): Promise<{ proxy: TcpProxy; url: string }> {
    const parsed = new URL(url);
    const defaults: Record<string, number> = { 'redis:': 6379, 'postgres:': 5432, 'postgresql:': 5432 };
    const proxy = await TcpProxy.start({ host: parsed.hostname, port: Number(parsed.port || defaults[parsed.protocol]) });
    parsed.hostname = '127.0.0.1';
    parsed.port = String(proxy.port);
    return { proxy, url: parsed.toString() };
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  /** Clients accepted so far (each has its own upstream connection). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.#clients.size;
  }

  /** Client→upstream bytes the proxy holds now (paused or delayed): > 0 while paused means a
   * request is waiting on the upstream. */
  get heldUpstreamBytes(): number {
    let total = 0;
    for (const pipe of this.#pipes) if (pipe.upstream) total += pipe.heldBytes;
    return total;
  }

  /** Holds all traffic, both ways, until `resume()`. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const pipe of this.#pipes) pipe.pump();
  }

  /** Delays client→upstream data by `ms` from now on (0: forward at once). */
  delay(ms: number): void {
    this.#delayMs = Math.max(0, ms);
  }

  /** Destroys every proxied connection but keeps listening. */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.dropConnections();
    await closed;
  }

  #accept(client: Socket): void {
    this.#accepted++;
    this.#clients.add(client);
    client.once('close', () => this.#clients.delete(client));
    const upstream = connect({ port: this.#target.port, host: this.#target.host, allowHalfOpen: true });
    const toUpstream = new Pipe(client, upstream, this, true);
    const toClient = new Pipe(upstream, client, this, false);
    for (const [socket, other, inbound] of [
      [client, upstream, toClient],
      [upstream, client, toUpstream],
    ] as const) {
      this.#sockets.add(socket);
      this.#pipes.add(inbound);
      let ended = false;
      socket.once('end', () => (ended = true));
      socket.on('error', () => {});
      socket.once('close', () => {
        this.#sockets.delete(socket);
        // Nothing more can be written to this side.
        inbound.stop();
        this.#pipes.delete(inbound);
        // A clean end reaches the other side through its pipe, after what is held; a reset or a
        // destroy ends it at once.
        if (!ended) other.destroy();
      });
    }
  }
}
