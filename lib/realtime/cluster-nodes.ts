/**
 * REDIS_CLUSTER_NODES as the app and the outbox relay read it: `host:port,host:port`, the same
 * syntax as the WebSocket server's variable (websocket-server/src/config.ts), so one value can be
 * given to all three. Empty or unset: no cluster (an empty list).
 */
import { z } from 'zod';

export interface ClusterNode {
  host: string;
  port: number;
}

export const clusterNodesSchema = z
  .string()
  .optional()
  .transform((value) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(
    z.array(
      z
        .string()
        .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
        .transform((entry): ClusterNode => ({ host: entry.slice(0, entry.lastIndexOf(':')), port: Number(entry.slice(entry.lastIndexOf(':') + 1)) }))
        .refine(({ port }) => port >= 1 && port <= 65535, 'port must be 1–65535'),
    ),
  );
