'use client';
import { useState } from 'react';

/**
 * Ends every session of the user (other browsers and devices included) and this one: the route
 * clears this browser's cookie, and every socket of the user closes with 4003. A 401 means the
 * session had already ended, so the result is the same: the sign-in page.
 */
export function SignOutEverywhereButton() {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run() {
    setPending(true);
    setError(null);
    try {
      const response = await fetch('/api/account/sign-out-everywhere', { method: 'POST' });
      if (!response.ok && response.status !== 401) throw new Error(`failed (${response.status}); try again`);
      window.location.assign('/signin');
    } catch (e) {
      setError((e as Error).message);
      setPending(false);
    }
  }

  return (
    <>
      <button type="button" className="button ghost" disabled={pending} onClick={() => void run()} data-testid="sign-out-everywhere">
        Sign out everywhere
      </button>
      {error && <span className="error">{error}</span>}
    </>
  );
}
