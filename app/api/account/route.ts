import { apiRoute } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { signedOutJson } from '@/lib/auth.ts';
import { deleteAccount } from '@/lib/domain/account.ts';

export const dynamic = 'force-dynamic';

/** DELETE /api/account: deletes the signed-in user and everything of theirs; signs them out. */
export const DELETE = apiRoute(async (request) => {
  const user = await requireUser();
  const result = await deleteAccount(user.id);
  return signedOutJson(request, result);
});
