import { expect } from 'chai';
import { postAccess, subscriptionGrants, tierSatisfies } from '../../src/channels/post-access.ts';

const now = new Date('2026-06-01T12:00:00Z');
const locked = { id: 'p', authorId: 'author', isLocked: true, requiredTier: 'PREMIUM' as const };

describe('channels/post-access', () => {
  it('orders tiers BASIC < PREMIUM < VIP', () => {
    expect(tierSatisfies('VIP', 'PREMIUM')).to.equal(true);
    expect(tierSatisfies('PREMIUM', 'PREMIUM')).to.equal(true);
    expect(tierSatisfies('BASIC', 'PREMIUM')).to.equal(false);
  });
  it('treats a subscription expiring exactly now as expired', () => {
    expect(subscriptionGrants({ status: 'ACTIVE', tier: 'VIP', expiresAt: now }, 'BASIC', now)).to.equal(false);
    expect(subscriptionGrants({ status: 'ACTIVE', tier: 'VIP', expiresAt: new Date(now.getTime() + 1) }, 'BASIC', now)).to.equal(true);
    expect(subscriptionGrants({ status: 'ACTIVE', tier: 'VIP', expiresAt: null }, 'BASIC', now)).to.equal(true);
    expect(subscriptionGrants({ status: 'EXPIRED', tier: 'VIP', expiresAt: null }, 'BASIC', now)).to.equal(false);
  });
  it('gives the reason access is granted', () => {
    const base = { viewerId: 'v', post: locked, subscription: null, purchased: false, now };
    expect(postAccess({ ...base, post: { ...locked, isLocked: false } })).to.equal('public');
    expect(postAccess({ ...base, viewerId: 'author' })).to.equal('author');
    expect(postAccess({ ...base, subscription: { status: 'ACTIVE', tier: 'PREMIUM', expiresAt: null } })).to.equal('subscriber');
    expect(postAccess({ ...base, purchased: true })).to.equal('buyer');
    expect(postAccess(base)).to.equal(null);
  });
});
