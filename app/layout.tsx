import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { BroadcastBanner } from '@/components/BroadcastBanner.tsx';
import { Header } from '@/components/Header.tsx';
import { RealtimeProvider } from '@/hooks/RealtimeProvider.tsx';
import { currentUser } from '@/lib/auth.ts';
import { env } from '@/lib/env.ts';
import './globals.css';

// Every page depends on the session cookie (header, socket provider), so nothing is prerendered
// at build time, when there is neither a request nor a database.
export const dynamic = 'force-dynamic';

export const metadata: Metadata = {
  title: 'fonana',
  description: 'Posts, likes, comments and subscriptions, live.',
};

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUser();
  const page = (
    <>
      {/* Operator notices: shown only inside the provider (signed in), above everything. */}
      <BroadcastBanner />
      <Header user={user} />
      <main>{children}</main>
    </>
  );
  return (
    <html lang="en">
      <body>
        {user ? (
          // One provider, so one socket per tab, shared by every component that subscribes.
          <RealtimeProvider userId={user.id} pollMs={env().NOTIFICATIONS_POLL_MS}>
            {page}
          </RealtimeProvider>
        ) : (
          page
        )}
      </body>
    </html>
  );
}
