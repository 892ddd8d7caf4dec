/** IPC between bench/scale.ts and its client processes (client-worker.ts). */

export interface ClientSpec {
  token: string;
  /** Channel slot 0, 1…: the same slots for every client of a run (e.g. [own notifications_, shared post_]). */
  channels: string[];
}

export interface ConnectRequest {
  cmd: 'connect';
  url: string;
  /** Source address of every connection of this worker (127.0.0.x). */
  localAddress: string;
  clients: ClientSpec[];
  /** Handshakes in flight at once in this worker. */
  concurrency: number;
  /** Full-jitter backoff of reconnects (the browser hook's DEFAULT_BACKOFF unless given). */
  backoff?: { baseMs: number; capMs: number };
}

export type WorkerRequest =
  | ConnectRequest
  /** Latencies of live deliveries from now on are recorded under this phase name. */
  | { cmd: 'phase'; name: string }
  | { cmd: 'count' }
  | { cmd: 'collect' }
  | { cmd: 'close' };

export type WorkerReply = Record<string, unknown>;

export interface ConnectReply {
  opened: number;
  failed: number;
  errors: Record<string, number>;
  seconds: number;
  /** Histogram (sparse pairs) of connect → every channel subscribed, per client. */
  readyMs: number[][];
}

export interface CountReply {
  /** Accepted deliveries per channel slot, summed over this worker's clients. */
  accepted: number[];
  /** Clients with every channel subscribed and replayed right now. */
  ready: number;
}

/** Per client (in the order given to connect), per channel slot where it says so. */
export interface CollectReply {
  /** accepted[slot][client]: distinct events applied (live or replayed). */
  accepted: number[][];
  /** duplicates[slot]: copies dropped (offset at or below the position). */
  duplicates: number[];
  /** gaps[slot]: pushes whose offset skipped ahead of the position (never expected). */
  gaps: number[];
  /** Subscribe replies after a reconnect: recovered true / false (a "reload"). */
  recovered: number;
  notRecovered: number;
  /** Per client: sockets closed by the server (any code), and the last close's time (ms, 0 = none). */
  closes: number[];
  lastCloseAt: number[];
  /** Per client: when it was last ready again after a close (every channel subscribed and replayed; 0 = never). */
  readyAgainAt: number[];
  /** Per client: failed connection attempts (refused or dropped before `connected`). */
  failedAttempts: number[];
  closeCodes: Record<string, number>;
  /** Sparse histograms: live deliveries per phase, and replayed deliveries (after a reconnect). */
  live: Record<string, number[][]>;
  replayed: number[][];
  errors: Record<string, number>;
  /** Clients that gave up (a close code that says stop). */
  stopped: number;
}
