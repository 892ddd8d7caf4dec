/**
 * SIMULATED payments. There is no payment provider in this project: `simulateCharge` checks the
 * amount, pretends the charge succeeded and returns a made-up reference (`sim_…`). Nothing is
 * sent anywhere and no money moves; the PostPurchase / Tip row is the whole record of it.
 *
 * It is called inside the transaction that records what was paid for (lib/domain/purchases.ts,
 * tips.ts), after the row that makes a purchase unique was inserted, so that a repeated request
 * is never charged twice. With a real provider the charge would become a two-step flow (an
 * intent before, a webhook confirming it after) instead of a call inside a transaction; the
 * callers' shape (reserve, charge, commit) is the place it would go.
 */
import { randomBytes } from 'node:crypto';
import { unprocessable } from '../api/errors.ts';

/** Smallest and largest amount one simulated charge accepts, in cents ($0.50 … $10,000). */
export const MIN_CHARGE_CENTS = 50;
export const MAX_CHARGE_CENTS = 1_000_000;

export interface SimulatedCharge {
  /** Always true: says to every reader of an answer that no provider was involved. */
  simulated: true;
  /** A made-up reference, `sim_` and 24 hex digits; not stored, shown once in the answer. */
  reference: string;
  amountCents: number;
  currency: 'USD';
}

export interface ChargeRequest {
  payerId: string;
  amountCents: number;
  /** What it is for, as the reference would describe it to a provider ("post:…", "tip:…"). */
  purpose: string;
}

/** Validates the amount (integer cents within the bounds, else 422) and "charges" it. */
export function simulateCharge(request: ChargeRequest): SimulatedCharge {
  const { amountCents } = request;
  if (!Number.isSafeInteger(amountCents) || amountCents < MIN_CHARGE_CENTS || amountCents > MAX_CHARGE_CENTS) {
    throw unprocessable(`the amount must be whole cents between ${MIN_CHARGE_CENTS} and ${MAX_CHARGE_CENTS}`);
  }
  return { simulated: true, reference: `sim_${randomBytes(12).toString('hex')}`, amountCents, currency: 'USD' };
}

/** "$5.00" for 500: the one formatting of an amount the notifications use. */
export function formatCents(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
