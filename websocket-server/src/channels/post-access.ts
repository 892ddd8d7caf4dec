/**
 * Who may read a post (and so its channel). Shared with the Next.js app, which shows or hides
 * the content by the same rule, so the page and the socket never disagree.
 */
import type { PostAccessFacts, SubscriptionFacts, Tier } from '../data/directory.ts';

const TIER_RANK: Record<Tier, number> = { BASIC: 1, PREMIUM: 2, VIP: 3 };

export function tierSatisfies(held: Tier, required: Tier): boolean {
  return TIER_RANK[held] >= TIER_RANK[required];
}

/** Active, unexpired (null = never expires) and of a sufficient tier. */
export function subscriptionGrants(subscription: SubscriptionFacts | null, required: Tier, now: Date): boolean {
  if (!subscription || subscription.status !== 'ACTIVE') return false;
  if (subscription.expiresAt !== null && subscription.expiresAt.getTime() <= now.getTime()) return false;
  return tierSatisfies(subscription.tier, required);
}

export type PostAccessReason = 'public' | 'author' | 'subscriber' | 'buyer';

export interface PostAccessInput {
  viewerId: string;
  post: PostAccessFacts;
  subscription: SubscriptionFacts | null;
  purchased: boolean;
  now: Date;
}

/** The two lookups a locked post needs; the server's Directory is one, the app has its own. */
export interface PostAccessLookups {
  findSubscription(subscriberId: string, creatorId: string): Promise<SubscriptionFacts | null>;
  hasPurchased(userId: string, postId: string): Promise<boolean>;
}

/** `postAccess`, doing the lookups only when the post is locked and not the viewer's own. */
export async function resolvePostAccess(
  viewerId: string,
  post: PostAccessFacts,
  lookups: PostAccessLookups,
  now: Date,
): Promise<PostAccessReason | null> {
  return (await resolvePostGrant(viewerId, post, lookups, now))?.reason ?? null;
}

/**
 * The reason, and until when it holds by itself: a subscriber's access ends at the
 * subscription's `expiresAt` (null: no end of its own; a change can still end it).
 */
export async function resolvePostGrant(
  viewerId: string,
  post: PostAccessFacts,
  lookups: PostAccessLookups,
  now: Date,
): Promise<{ reason: PostAccessReason; validUntil: number | null } | null> {
  if (!post.isLocked || post.authorId === viewerId) {
    const reason = postAccess({ viewerId, post, subscription: null, purchased: false, now });
    return reason ? { reason, validUntil: null } : null;
  }
  const [subscription, purchased] = await Promise.all([
    lookups.findSubscription(viewerId, post.authorId),
    lookups.hasPurchased(viewerId, post.id),
  ]);
  const reason = postAccess({ viewerId, post, subscription, purchased, now });
  if (!reason) return null;
  return { reason, validUntil: reason === 'subscriber' ? (subscription?.expiresAt?.getTime() ?? null) : null };
}

/** The reason access is granted, or null when it is not. */
export function postAccess({ viewerId, post, subscription, purchased, now }: PostAccessInput): PostAccessReason | null {
  if (!post.isLocked) return 'public';
  if (post.authorId === viewerId) return 'author';
  if (subscriptionGrants(subscription, post.requiredTier, now)) return 'subscriber';
  if (purchased) return 'buyer';
  return null;
}
