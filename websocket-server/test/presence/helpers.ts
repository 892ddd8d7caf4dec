/** Clients and waits shared by the presence tests against real server processes. */
import { TestClient, type Frame } from '../support/client.ts';
import type { ServerProcess } from '../support/server-process.ts';
import { mintSessionToken } from '../support/tokens.ts';

/** A client whose frames are stamped with their arrival time (ms, this process's clock). */
export class TimedClient {
  readonly client: TestClient;
  readonly arrivals = new Map<Frame, number>();

  private constructor(client: TestClient) {
    this.client = client;
    client.ws.on('message', () => {
      // TestClient's own listener ran first and recorded the frame.
      const frame = client.frames[client.frames.length - 1];
      if (frame) this.arrivals.set(frame, Date.now());
    });
  }

  static async connect(server: ServerProcess, userId: string): Promise<TimedClient> {
    return new TimedClient(await TestClient.connect(server.url, { token: await mintSessionToken(userId) }));
  }

  /** Pushes of `type` on `channel`, in arrival order. */
  pushes(channel: string, type: 'creator_presence' | 'viewers'): Frame[] {
    return this.client.pushes(channel, { includePresence: true }).filter((f) => f.type === type);
  }

  /** The first frame from index `from` on (recorded or future) that matches. */
  nextFrom(from: number, match: (frame: Frame) => boolean, timeoutMs = 5_000): Promise<Frame> {
    return this.client.next((f) => this.client.frames.indexOf(f) >= from && match(f), timeoutMs);
  }

  /** Waits for a push of `type` on `channel` whose data satisfies `ok`, arriving from index `from` on. */
  waitState(channel: string, type: 'creator_presence' | 'viewers', ok: (data: Record<string, unknown>) => boolean, from = 0, timeoutMs = 5_000): Promise<Frame> {
    return this.nextFrom(from, (f) => f.channel === channel && f.type === type && ok(f.data as Record<string, unknown>), timeoutMs);
  }

  /** The latest `viewers` count received on `channel`, or null. */
  lastCount(channel: string): number | null {
    const last = this.pushes(channel, 'viewers').at(-1);
    return last ? ((last.data as { count: number }).count ?? null) : null;
  }

  get frameCount(): number {
    return this.client.frames.length;
  }

  close(): Promise<unknown> {
    this.client.close();
    return this.client.closed;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Server environment for presence tests: a short TTL, and connect limits out of the way. */
export function presenceEnv(ttlMs: number): Record<string, string> {
  return { PRESENCE_TTL_MS: String(ttlMs), LOG_LEVEL: 'info', CONNECT_RATE_PER_IP: '1000', CONNECT_BURST_PER_IP: '1000' };
}
