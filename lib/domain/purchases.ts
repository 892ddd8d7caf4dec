/**
 * Buying a locked post (one-off, permanent access for the buyer). The payment is simulated
 * (payments.ts). One transaction holds all of it:
 *
 *   INSERT PostPurchase … ON CONFLICT (userId, postId) DO NOTHING   -- the purchase, once
 *   simulated charge                                                -- only when the row is new
 *   entitlement_changed purchase_granted {userId, postId}           -- the outbox ($control)
 *   Notification PURCHASE for the creator + its notification event  -- the outbox
 *
 * so a repeated or concurrent request for the same post finds the row (the unique index makes
 * the second insert wait for the first and then do nothing) and answers 200 without a second
 * charge. What can be bought: a locked post with a price, by someone who is not its author and
 * cannot read it already; everything else is refused with a 4xx that says why.
 *
 * The buyer's open page unlocks by rendering again (router.refresh() after the answer; the
 * buyer's other tabs on it through `access_granted` on their notifications channel): the
 * page reads the purchase and subscribes to `post_{id}`, which the WebSocket server now grants
 * (its access cache keeps no refusals, and purchase_granted invalidates what it holds).
 */
import { db } from '../db.ts';
import type { SessionUser } from '../auth.ts';
import { ApiError, notFound, unprocessable } from '../api/errors.ts';
import { announcePurchaseChange, publishAccessGranted, sendNotification } from '../realtime.ts';
import { formatCents, simulateCharge, type SimulatedCharge } from './payments.ts';
import { accessTo } from './post-access.ts';

export interface PurchaseResult {
  purchase: { id: string; postId: string; priceCents: number; createdAt: string };
  /** false: it had been bought before; nothing was charged this time. */
  created: boolean;
  /** Only when `created`: the simulated charge. */
  payment: SimulatedCharge | null;
}

export async function buyPost(user: SessionUser, postId: string): Promise<PurchaseResult> {
  const post = await db().post.findUnique({
    where: { id: postId },
    select: { id: true, title: true, authorId: true, isLocked: true, requiredTier: true, priceCents: true },
  });
  if (!post) throw notFound('no such post');
  const bought = await db().postPurchase.findUnique({ where: { userId_postId: { userId: user.id, postId } } });
  if (bought) return { purchase: serialize(bought), created: false, payment: null };

  if (post.authorId === user.id) throw unprocessable('you cannot buy your own post');
  if (!post.isLocked) throw unprocessable('this post is public: there is nothing to buy');
  if (post.priceCents === null) throw unprocessable('this post is not for sale: subscribe to read it');
  const access = await accessTo(user.id, post);
  if (access) throw new ApiError(409, 'conflict', `you can already read this post (${access})`);
  const priceCents = post.priceCents;

  return db().$transaction(async (tx) => {
    const { count } = await tx.postPurchase.createMany({ data: [{ userId: user.id, postId, priceCents }], skipDuplicates: true });
    const row = await tx.postPurchase.findUniqueOrThrow({ where: { userId_postId: { userId: user.id, postId } } });
    // A concurrent request of the same user committed first: its purchase stands, no charge here.
    if (count === 0) return { purchase: serialize(row), created: false, payment: null };
    const payment = simulateCharge({ payerId: user.id, amountCents: priceCents, purpose: `post:${postId}` });
    await announcePurchaseChange(tx, 'purchase_granted', user.id, postId);
    // The buyer's other tabs on this post, which hold no post channel to be re-granted.
    await publishAccessGranted(tx, user.id, { cause: 'purchase_granted', postId });
    await sendNotification(tx, post.authorId, {
      type: 'PURCHASE',
      title: 'Post purchased',
      message: `${user.name} bought “${post.title}” for ${formatCents(priceCents)}`,
      data: { postId, buyerId: user.id, priceCents },
    });
    return { purchase: serialize(row), created: true, payment };
  });
}

function serialize(row: { id: string; postId: string; priceCents: number; createdAt: Date }) {
  return { id: row.id, postId: row.postId, priceCents: row.priceCents, createdAt: row.createdAt.toISOString() };
}
