import { apiRoute } from '@/lib/api/handler.ts';
import { requireUser } from '@/lib/api/session.ts';
import { signedOutJson } from '@/lib/auth.ts';
import { signOutEverywhere } from '@/lib/domain/account.ts';

export const dynamic = 'force-dynamic';

/**
 * POST /api/account/sign-out-everywhere: every session of the signed-in user ends, this one
 * included (its cookie is cleared in the answer), and their open sockets close with 4003.
 */
export const POST = apiRoute(async (request) => {
  const user = await requireUser();
  const { notBefore } = await signOutEverywhere(user.id);
  return signedOutJson(request, { signedOut: true, notBefore: notBefore.toISOString() });
});
