/** IPC between the harness (main.ts) and its client processes (client-worker.ts). */
export type Target = 'project' | 'socketio' | 'raw';

export interface ConnectRequest {
  cmd: 'connect';
  target: Target;
  url: string;
  /** Source address of every connection of this worker (127.0.0.x). */
  localAddress: string;
  conns: Array<{ channel: string; token?: string }>;
  /** Opens at this steady rate (per second, this worker's share); else `concurrency` at a time. */
  ratePerSecond?: number;
  concurrency: number;
  /** The push type (project, raw) or event name (Socket.IO) counted as a delivery. */
  event: string;
}

export type WorkerRequest =
  | ConnectRequest
  /** Zeroes the counters and starts recording; deliveries at or above `slowMs` are kept. */
  | { cmd: 'reset'; slowMs?: number; event?: string }
  | { cmd: 'count' }
  | { cmd: 'collect' }
  | { cmd: 'close' };

export type WorkerReply = Record<string, unknown>;

export interface ConnectReply {
  opened: number;
  failed: number;
  errors: Record<string, number>;
  seconds: number;
}

export interface CollectReply {
  counts: number[];
  histogram: number[][];
  /** [sentAt, latency] of deliveries at or above slowMs (wall-clock ms). */
  slow: Array<[number, number]>;
  /** When this worker's sockets received a WebSocket ping (the project's heartbeat). */
  pings: number[];
  dropped: number;
}
