'use client';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { api } from '@/hooks/api-client.ts';

type Tier = 'BASIC' | 'PREMIUM' | 'VIP';
const TIERS: Tier[] = ['BASIC', 'PREMIUM', 'VIP'];

export function SubscribeButton({ creatorId, initial }: { creatorId: string; initial: { tier: string } | null }) {
  const router = useRouter();
  const [subscription, setSubscription] = useState(initial);
  const [tier, setTier] = useState<Tier>((initial?.tier as Tier | undefined) ?? 'BASIC');
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<unknown>, next: { tier: string } | null) {
    setPending(true);
    setError(null);
    try {
      await action();
      setSubscription(next);
      // Locked posts on this page and the feed depend on the subscription.
      router.refresh();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(false);
    }
  }

  return (
    <div className="row" data-testid="subscribe">
      <select value={tier} onChange={(e) => setTier(e.target.value as Tier)} aria-label="Tier" style={{ width: 'auto' }}>
        {TIERS.map((t) => (
          <option key={t}>{t}</option>
        ))}
      </select>
      {subscription && subscription.tier === tier ? (
        <span className="badge" data-testid="subscribed-badge">
          Subscribed ({subscription.tier})
        </span>
      ) : (
        <button type="button" className="button" disabled={pending} onClick={() => void run(() => api.subscribe(creatorId, tier), { tier })} data-testid="subscribe-button">
          {subscription ? `Change to ${tier}` : `Subscribe (${tier})`}
        </button>
      )}
      {subscription && (
        // Cancels at once (DELETE …/subscription); open pages of this creator's locked posts
        // lose the post channel live and render the locked state.
        <button
          type="button"
          className="button danger"
          disabled={pending}
          onClick={() => void run(() => api.unsubscribe(creatorId), null)}
          data-testid="cancel-subscription"
        >
          Cancel subscription
        </button>
      )}
      {error && <span className="error">{error}</span>}
    </div>
  );
}
