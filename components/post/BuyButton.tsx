'use client';
/**
 * "Buy for $X" on a locked post the viewer cannot read. The payment is SIMULATED (no provider,
 * nothing is charged), and the button says so. After the purchase the page is rendered again
 * by the server (`router.refresh()`, no reload): it now reads the purchase, shows the content
 * and subscribes to the post's channel, which the WebSocket server grants from the same rule.
 */
import { useRouter } from 'next/navigation';
import { useState, useTransition } from 'react';
import { api } from '@/hooks/api-client.ts';

export function BuyButton({ postId, priceCents }: { postId: string; priceCents: number }) {
  const router = useRouter();
  const [pending, setPending] = useState(false);
  const [refreshing, startRefresh] = useTransition();
  const [error, setError] = useState<string | null>(null);

  async function buy() {
    setPending(true);
    setError(null);
    try {
      await api.buyPost(postId);
      startRefresh(() => router.refresh());
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(false);
    }
  }

  return (
    <div data-testid="buy" style={{ marginTop: 12 }}>
      <button type="button" className="button" disabled={pending || refreshing} onClick={() => void buy()} data-testid="buy-button">
        {pending || refreshing ? 'Buying…' : `Buy for $${(priceCents / 100).toFixed(2)}`}
      </button>
      <p className="muted" data-testid="simulated-payment-notice" style={{ fontSize: '0.85em' }}>
        Payments here are simulated: no card is asked for and nothing is charged.
      </p>
      {error && <p className="error">{error}</p>}
    </div>
  );
}
