/**
 * Tipping a creator: a Tip row, the (simulated) charge, and a TIP notification to the creator
 * (stored row + `notification` event on notifications_{creatorId}), in one transaction through
 * the outbox, so the creator gets the row and the push, or (rolled back) neither. Tips change
 * no access, so nothing is announced to the WebSocket nodes.
 */
import { z } from 'zod';
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { notFound, unprocessable } from '../api/errors.ts';
import { idSchema } from '../api/validate.ts';
import { sendNotification } from '../realtime.ts';
import { formatCents, simulateCharge, type SimulatedCharge } from './payments.ts';

/** $1 … $1,000 per tip; the note at most 280 characters (the column is VARCHAR(280)). */
export const MIN_TIP_CENTS = 100;
export const MAX_TIP_CENTS = 100_000;
export const MAX_TIP_MESSAGE = 280;

export const tipSchema = z
  .object({
    creatorId: idSchema,
    amountCents: z.number().int().min(MIN_TIP_CENTS).max(MAX_TIP_CENTS),
    message: z
      .string()
      .trim()
      .max(MAX_TIP_MESSAGE)
      .optional()
      .transform((m) => (m ? m : undefined)),
  })
  .strict();
export type TipInput = z.infer<typeof tipSchema>;

export interface TipResult {
  tip: { id: string; creatorId: string; amountCents: number; message: string | null; createdAt: string };
  payment: SimulatedCharge;
}

export async function sendTip(user: SessionUser, input: TipInput): Promise<TipResult> {
  if (input.creatorId === user.id) throw unprocessable('you cannot tip yourself');
  const creator = await db().user.findUnique({ where: { id: input.creatorId }, select: { isCreator: true } });
  if (!creator?.isCreator) throw notFound('no such creator');
  return db().$transaction(async (tx) => {
    const tip = await tx.tip.create({
      data: { fromUserId: user.id, creatorId: input.creatorId, amountCents: input.amountCents, message: input.message ?? null },
    });
    const payment = simulateCharge({ payerId: user.id, amountCents: input.amountCents, purpose: `tip:${tip.id}` });
    await sendNotification(tx, input.creatorId, {
      type: 'TIP',
      title: 'New tip',
      message: `${user.name} tipped you ${formatCents(input.amountCents)}${input.message ? `: “${input.message}”` : ''}`,
      data: { tipId: tip.id, fromUserId: user.id, amountCents: input.amountCents },
    });
    return {
      tip: { id: tip.id, creatorId: tip.creatorId, amountCents: tip.amountCents, message: tip.message, createdAt: tip.createdAt.toISOString() },
      payment,
    };
  });
}
