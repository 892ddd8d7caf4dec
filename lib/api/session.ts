import { currentUser, type SessionUser } from '../auth.ts';
import { unauthorized } from './errors.ts';

/** The signed-in user, or a 401 answer. */
export async function requireUser(): Promise<SessionUser> {
  const user = await currentUser();
  if (!user) throw unauthorized();
  return user;
}
