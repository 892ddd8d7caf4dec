import { notFound, redirect } from 'next/navigation';
import { AdminDashboard } from '@/components/admin/AdminDashboard.tsx';
import { isAdmin } from '@/lib/admin/access.ts';
import { opsStats } from '@/lib/admin/ops-stats.ts';
import { currentUser } from '@/lib/auth.ts';

export const metadata = { title: 'Operations · fonana' };

/** How often the page asks GET /api/admin/stats again (ms); the nodes write every 2 s. */
const POLL_MS = 2_000;

/**
 * The operator's view: WebSocket nodes, connections, channels, events per second, publish
 * failures and the outbox backlog, live. Signed out: the sign-in page; not an admin: 404, so
 * the page does not tell other users that it exists.
 */
export default async function AdminPage() {
  const user = await currentUser();
  if (!user) redirect('/signin?callbackUrl=/admin');
  if (!(await isAdmin(user.id))) notFound();
  return (
    <div className="stack">
      <h1>Operations</h1>
      <AdminDashboard initial={await opsStats()} pollMs={POLL_MS} />
    </div>
  );
}
