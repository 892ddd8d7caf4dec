/**
 * Operator broadcasts (maintenance notices) from the app: an admin (User.isAdmin, read from the
 * database on every request, so taking the flag away takes effect at once) enqueues one
 * `broadcast` event on the reserved `broadcast` channel in the outbox, in the same transaction
 * as the check. The outbox relay delivers it like any event, so a WebSocket outage delays the
 * notice instead of losing it; every node then writes it to every signed-in socket
 * (websocket-server/src/broadcast.ts). Nothing else is stored: the notice lives in the outbox
 * row until it is sent, and on the nodes for BROADCAST_RETAIN_MS (ADR 0010).
 */
import { z } from 'zod';
import { BROADCAST_CHANNEL, BROADCAST_LEVELS, MAX_BROADCAST_LENGTH, type BroadcastPayload } from '@/websocket-server/src/protocol/index.ts';
import { forbidden, unprocessable } from '../api/errors.ts';
import { db } from '../db.ts';
import { enqueue } from '../realtime.ts';

export const broadcastInputSchema = z.strictObject({
  message: z.string().trim().min(1).max(MAX_BROADCAST_LENGTH),
  level: z.enum(BROADCAST_LEVELS),
});
export type BroadcastInput = z.infer<typeof broadcastInputSchema>;

/** 403 unless `userId` is an admin now (checked before the body is read, so a non-admin learns nothing about it). */
export async function requireAdmin(userId: string): Promise<void> {
  const user = await db().user.findUnique({ where: { id: userId }, select: { isAdmin: true } });
  if (!user?.isAdmin) throw forbidden('only operators may broadcast');
}

/** Enqueues the broadcast for delivery; 403 unless `userId` is an admin at the commit too. */
export async function publishBroadcast(userId: string, input: BroadcastInput): Promise<BroadcastPayload> {
  return db().$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { id: userId }, select: { isAdmin: true } });
    if (!user?.isAdmin) throw forbidden('only operators may broadcast');
    const data: BroadcastPayload = { message: input.message, level: input.level };
    // enqueue validates against the protocol once more; false means the two schemas disagree.
    if (!(await enqueue(tx, BROADCAST_CHANNEL, 'broadcast', data))) throw unprocessable('the broadcast does not match the protocol');
    return data;
  });
}
