import { redirect } from 'next/navigation';
import { SignInForm } from '@/components/SignInForm.tsx';
import { currentUser } from '@/lib/auth.ts';
import { env } from '@/lib/env.ts';
import { sameOriginPath } from '@/lib/same-origin-path.ts';

export const metadata = { title: 'Sign in · fonana' };

export default async function SignInPage({ searchParams }: { searchParams: Promise<{ callbackUrl?: string }> }) {
  const { callbackUrl } = await searchParams;
  // Only paths on this site: anything else here would be an open redirect.
  const target = sameOriginPath(callbackUrl);
  if (await currentUser()) redirect(target);
  return (
    <div className="card" style={{ maxWidth: 420, margin: '40px auto' }}>
      <h1>Sign in</h1>
      <SignInForm callbackUrl={target} />
      {/* Only on the demo (FONANA_DEMO=1, set by `npm start` when it seeded these accounts). */}
      {env().FONANA_DEMO && (
        <p className="muted" data-testid="demo-accounts">
          Demo accounts: alice@example.com (creator), bob@example.com (subscribed to Alice), carol@example.com — password
          “password”.
        </p>
      )}
    </div>
  );
}
