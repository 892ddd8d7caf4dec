'use client';
/**
 * Tip a creator ($1 … $1,000, an optional note of at most 280 characters). The payment is
 * SIMULATED; the creator gets a TIP notification live (their bell).
 */
import { useState } from 'react';
import { api } from '@/hooks/api-client.ts';

export function TipForm({ creatorId }: { creatorId: string }) {
  const [dollars, setDollars] = useState('5');
  const [message, setMessage] = useState('');
  const [pending, setPending] = useState(false);
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setPending(true);
    setStatus(null);
    try {
      const cents = Math.round(Number(dollars) * 100);
      const { tip } = await api.tip(creatorId, cents, message.trim() || undefined);
      setStatus({ ok: true, text: `Thank you! You tipped $${(tip.amountCents / 100).toFixed(2)} (simulated).` });
      setMessage('');
    } catch (e) {
      setStatus({ ok: false, text: (e as Error).message });
    } finally {
      setPending(false);
    }
  }

  return (
    <form className="card" onSubmit={(e) => void submit(e)} data-testid="tip-form">
      <div className="row">
        <label>
          Tip $
          <input type="number" min={1} max={1000} step="0.01" value={dollars} onChange={(e) => setDollars(e.target.value)} aria-label="Tip amount in dollars" style={{ width: 100 }} />
        </label>
        <input type="text" maxLength={280} value={message} onChange={(e) => setMessage(e.target.value)} placeholder="A note (optional)" aria-label="Tip note" />
        <button type="submit" className="button" disabled={pending} data-testid="tip-button">
          Send tip
        </button>
      </div>
      <p className="muted" style={{ fontSize: '0.85em' }}>
        Payments here are simulated: nothing is charged.
      </p>
      {status && <p className={status.ok ? 'muted' : 'error'} data-testid="tip-status">{status.text}</p>}
    </form>
  );
}
