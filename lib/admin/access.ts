/**
 * Who may see the operator's view (the admin page, GET /api/admin/stats): users whose
 * `User.isAdmin` is set (the demo makes carol@example.com one). Read from the database on every
 * request, not from the session token, so revoking the flag takes effect at the next request
 * without anyone signing out.
 */
import { cache } from 'react';
import { currentUser, type SessionUser } from '@/lib/auth.ts';
import { forbidden, unauthorized } from '@/lib/api/errors.ts';
import { db } from '@/lib/db.ts';

/** Memoized per server render: the header's link and the page both ask. */
export const isAdmin = cache(async (userId: string): Promise<boolean> => {
  const user = await db().user.findUnique({ where: { id: userId }, select: { isAdmin: true } });
  return user?.isAdmin === true;
});

/** The signed-in admin, or a 401 (signed out) / 403 (not an admin) answer. */
export async function requireAdmin(): Promise<SessionUser> {
  const user = await currentUser();
  if (!user) throw unauthorized();
  if (!(await isAdmin(user.id))) throw forbidden('admins only');
  return user;
}
