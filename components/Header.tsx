import Link from 'next/link';
import type { SessionUser } from '@/lib/auth.ts';
import { AdminLink } from './admin/AdminLink.tsx';
import { ConnectionStatus } from './ConnectionStatus.tsx';
import { UnreadMessagesLink } from './messages/UnreadMessagesLink.tsx';
import { NotificationBell } from './NotificationBell.tsx';
import { SignOutButton } from './SignOutButton.tsx';
import { SignOutEverywhereButton } from './SignOutEverywhereButton.tsx';
import styles from './Header.module.css';

export function Header({ user }: { user: SessionUser | null }) {
  return (
    <header className={styles.header}>
      <div className={styles.inner}>
        <Link href="/" className={styles.brand}>
          fonana
        </Link>
        {user && (
          <nav className={styles.nav}>
            <Link href="/">Feed</Link>
            <Link href="/creators">Creators</Link>
            {user.isCreator && <Link href={`/creators/${user.id}`}>My page</Link>}
            {user.isCreator && <Link href="/posts/new">New post</Link>}
            <AdminLink userId={user.id} />
          </nav>
        )}
        <span className="spacer" />
        {user ? (
          <>
            <ConnectionStatus />
            <UnreadMessagesLink userId={user.id} />
            <NotificationBell />
            <span className={styles.user} data-testid="signed-in-as">
              {user.name}
            </span>
            <SignOutButton />
            <SignOutEverywhereButton />
          </>
        ) : (
          <Link href="/signin">Sign in</Link>
        )}
      </div>
    </header>
  );
}
