/**
 * A client that behaves like the browser hook across a server restart: when the socket closes
 * it records the close code, reconnects after a short delay and subscribes again. Tests use it
 * to show that a `pm2 reload` costs clients one reconnect and no lost subscription.
 */
import { TestClient, type ConnectOptions, type Frame } from '../../../websocket-server/test/support/client.ts';

const RETRY_DELAY_MS = 100;

export class ReconnectingClient {
  /** Close codes seen, in order. */
  readonly closeCodes: number[] = [];
  /** Handshakes that failed while the server was restarting (refused, 503…). */
  failedAttempts = 0;
  #current: TestClient | undefined;
  /** When the current socket finished subscribing (ms since epoch). */
  #readyAt = 0;
  #stopped = false;
  #waiters: Array<() => void> = [];

  constructor(
    readonly url: string,
    readonly channel: string,
    readonly options: ConnectOptions,
  ) {}

  async start(): Promise<void> {
    await this.#connect();
  }

  get readyAt(): number {
    return this.#current ? this.#readyAt : 0;
  }

  /** Resolves once a socket opened after `since` (ms since epoch) is subscribed. */
  async readySince(since: number, timeoutMs = 15_000): Promise<TestClient> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.#current && this.#readyAt > since)) {
      if (Date.now() > deadline) throw new Error(`no subscribed connection after ${since} within ${timeoutMs} ms; closes ${this.closeCodes.join(',')}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.#current;
  }

  next(match: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame> {
    if (!this.#current) throw new Error('not connected');
    return this.#current.next(match, timeoutMs);
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.close();
  }

  async #connect(): Promise<void> {
    while (!this.#stopped) {
      try {
        const client = await TestClient.connect(this.url, this.options);
        await client.mustSubscribe(this.channel);
        this.#current = client;
        this.#readyAt = Date.now();
        this.#waiters.splice(0).forEach((wake) => wake());
        void client.closed.then(({ code }) => {
          if (this.#stopped || this.#current !== client) return;
          this.closeCodes.push(code);
          this.#current = undefined;
          setTimeout(() => void this.#connect(), RETRY_DELAY_MS);
        });
        return;
      } catch {
        this.failedAttempts += 1;
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
      }
    }
  }
}
