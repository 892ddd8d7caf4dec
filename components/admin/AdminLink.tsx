import Link from 'next/link';
import { isAdmin } from '@/lib/admin/access.ts';

/** The header's link to the admin page, for admins only (the flag read fresh per render). */
export async function AdminLink({ userId }: { userId: string }) {
  if (!(await isAdmin(userId).catch(() => false))) return null;
  return (
    <Link href="/admin" data-testid="admin-link">
      Admin
    </Link>
  );
}
