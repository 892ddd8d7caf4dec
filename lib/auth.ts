/**
 * next-auth v4: a Credentials provider against the User table (bcrypt hashes), JWT sessions.
 *
 * The session cookie is a JWE that the WebSocket server decrypts with the same NEXTAUTH_SECRET,
 * so the user id must be in `sub` (next-auth puts `user.id` there on sign-in) and nothing the
 * server needs may live only in a database session.
 *
 * Sessions end when they should: each sign-in gets a random session id (`sid` claim), and a
 * session token stops counting — here and on the WebSocket server, by the same rules — when its
 * user is gone, when its `sid` was signed out (a RevokedSession row), or when it was issued at or
 * before the user's "sign out everywhere" (`User.sessionsValidAfter`, see
 * websocket-server/src/access/session-rules.ts).
 *
 * next-auth re-stamps `iat` whenever it refreshes the cookie (GET /api/auth/session). It does so
 * only for a token that passed these checks, but a refresh racing a "sign out everywhere" (read
 * before the cutoff was stored, encoded after its second) would carry an `iat` past the cutoff.
 * So the token also keeps `auth_time` (the sign-in instant, seconds, as in OpenID Connect), which
 * no refresh changes, and the cutoff applies to the earlier of the two.
 */
import { randomUUID } from 'node:crypto';
import { cookies } from 'next/headers';
import { cache } from 'react';
import bcrypt from 'bcryptjs';
import { getServerSession, type NextAuthOptions } from 'next-auth';
import { getToken, type JWT } from 'next-auth/jwt';
import CredentialsProvider from 'next-auth/providers/credentials';
import { z } from 'zod';
import { issuedBeforeCutoff } from '@/websocket-server/src/access/session-rules.ts';
import { db } from './db.ts';
import { env } from './env.ts';
import { log } from './log.ts';
import { announceSessionRevoked } from './realtime.ts';
import { REALTIME_TOKEN_SCOPE } from './realtime/browser-token.ts';

const credentialsSchema = z.object({
  email: z.string().trim().toLowerCase().email().max(320),
  password: z.string().min(1).max(200),
});

// Compared against when the e-mail is unknown, so that a wrong e-mail costs as much time as a
// wrong password and response times do not reveal which addresses have accounts.
const DUMMY_HASH = '$2b$10$Ibg1HWkIeW4.9N/Q2145fez9gDvBs0IfWOWyerzGFfAP4yZMk4KVu';

/** next-auth's default, stated because a signed-out session id is kept this long. */
const SESSION_MAX_AGE_SECONDS = 30 * 24 * 60 * 60;

/** The `sid` claim, if the token has a well-formed one (tokens minted before it existed do not). */
export function sessionIdOf(token: JWT | null | undefined): string | undefined {
  const sid = token?.sid;
  return typeof sid === 'string' && sid.length > 0 && sid.length <= 64 ? sid : undefined;
}

export type DeadSessionReason = 'no_subject' | 'unknown_user' | 'signed_out' | 'signed_out_everywhere';

/**
 * Why a decoded session token no longer counts, or null when it still does. One query: the
 * user's cutoff and, through a filtered relation, whether this `sid` was signed out.
 */
export async function deadSessionReason(token: JWT): Promise<DeadSessionReason | null> {
  if (!token.sub) return 'no_subject';
  const sid = sessionIdOf(token);
  const user = await db().user.findUnique({
    where: { id: token.sub },
    select: {
      sessionsValidAfter: true,
      // An impossible id when there is no sid: the relation must stay filtered to one row.
      revokedSessions: { where: { sessionId: sid ?? '' }, select: { sessionId: true }, take: 1 },
    },
  });
  if (!user) return 'unknown_user';
  if (sid && user.revokedSessions.length > 0) return 'signed_out';
  if (issuedBeforeCutoff(sessionStartMs(token), user.sessionsValidAfter)) return 'signed_out_everywhere';
  return null;
}

const seconds = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/**
 * When the session began, for the "sign out everywhere" cutoff: the earlier of `iat` and
 * `auth_time`. A token without `iat` counts as issued at 0, as on the WebSocket server.
 */
export function sessionStartMs(token: JWT): number {
  const iat = seconds(token.iat) ?? 0;
  const authTime = seconds(token.auth_time) ?? iat;
  return Math.min(iat, authTime) * 1000;
}

/**
 * next-auth's `signOut` event (it decodes the cookie itself, without the jwt callback, so this
 * runs for a session that is already refused too). Records the sid as signed out until every
 * copy of the cookie would have expired anyway, then tells the WebSocket nodes, which close that
 * session's sockets with 4003. Never throws: next-auth clears the cookie whatever happens here.
 */
async function recordSignOut(token: JWT | null): Promise<void> {
  if (!token?.sub || token.scope === REALTIME_TOKEN_SCOPE) return;
  const userId = token.sub;
  const sessionId = sessionIdOf(token);
  if (!sessionId) {
    log.info('sign-out of a session without a sid: nothing to revoke on its own', { userId });
    return;
  }
  // Every copy of this session's cookie was refreshed at the latest now, so none expires later
  // than now + maxAge; the row must outlive them all (the token's own exp is usually the same).
  const tokenExpiresMs = typeof token.exp === 'number' ? token.exp * 1000 : 0;
  const expiresAt = new Date(Math.max(tokenExpiresMs, Date.now() + SESSION_MAX_AGE_SECONDS * 1000));
  try {
    await db().revokedSession.createMany({ data: [{ sessionId, userId, expiresAt }], skipDuplicates: true });
  } catch (error) {
    // The user was deleted meanwhile (their sessions are refused anyway), or the database is down.
    log.warn('recording a sign-out failed', { userId, error: (error as Error).message });
  }
  await announceSessionRevoked(userId, sessionId);
}

/**
 * A JSON answer that also deletes the session cookie (and its `.0`, `.1`… chunks) this request
 * carried, with next-auth's own cookie attributes: for routes that end the session themselves.
 */
export function signedOutJson(request: Request, body: unknown): Response {
  const secure = env().NEXTAUTH_URL.startsWith('https://');
  const base = `${secure ? '__Secure-' : ''}next-auth.session-token`;
  const names = new Set([base]);
  for (const part of (request.headers.get('cookie') ?? '').split(';')) {
    const name = part.slice(0, part.indexOf('=')).trim();
    if (name.startsWith(`${base}.`) && /^\d+$/.test(name.slice(base.length + 1))) names.add(name);
  }
  const headers = new Headers({ 'cache-control': 'no-store' });
  for (const name of names) headers.append('set-cookie', `${name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
  return Response.json(body, { headers });
}

let options: NextAuthOptions | undefined;

export function authOptions(): NextAuthOptions {
  options ??= {
    secret: env().NEXTAUTH_SECRET,
    session: { strategy: 'jwt', maxAge: SESSION_MAX_AGE_SECONDS },
    pages: { signIn: '/signin' },
    providers: [
      CredentialsProvider({
        name: 'Email and password',
        credentials: {
          email: { label: 'Email', type: 'email' },
          password: { label: 'Password', type: 'password' },
        },
        async authorize(raw) {
          const parsed = credentialsSchema.safeParse(raw);
          if (!parsed.success) return null;
          const user = await db().user.findUnique({ where: { email: parsed.data.email } });
          const ok = await bcrypt.compare(parsed.data.password, user?.passwordHash ?? DUMMY_HASH);
          if (!user || !ok) return null;
          return { id: user.id, name: user.name, email: user.email, isCreator: user.isCreator };
        },
      }),
    ],
    callbacks: {
      // Runs at sign-in (`user` present; next-auth has already copied user.id into `sub`) and
      // on every request that reads the session. Returning `{}` means no session.
      async jwt({ token, user }) {
        // A realtime token (lib/realtime/browser-token.ts) is readable by scripts; it opens a
        // socket and nothing else, so it never counts as a session here.
        if (token.scope === REALTIME_TOKEN_SCOPE) return {};
        if (user) {
          token.isCreator = user.isCreator ?? false;
          // This browser's session: signing out revokes this id, and the realtime tokens the
          // session asks for carry it too. Never shown to page scripts (see session below).
          token.sid = randomUUID();
          token.auth_time = Math.floor(Date.now() / 1000);
          return token;
        }
        let dead: DeadSessionReason | null;
        try {
          dead = await deadSessionReason(token);
        } catch (error) {
          // The database cannot say whether the session was ended. Refusing it would sign every
          // user out during a database outage (next-auth deletes the cookie of a refused session);
          // keeping it costs nothing the outage does not already stop: every route that acts
          // needs the database and answers 503, and the WebSocket server refuses handshakes (1013)
          // until it can check the session itself.
          log.warn('session check skipped: database unavailable', { userId: token.sub, error: (error as Error).message });
          return token;
        }
        if (dead) {
          log.debug('session refused', { userId: token.sub, reason: dead });
          return {};
        }
        return token;
      },
      session({ session, token }) {
        // No subject (a refused realtime token): no user, even if the token carried a name.
        if (!token.sub) return { expires: session.expires } as typeof session;
        if (session.user) {
          session.user.id = token.sub;
          session.user.isCreator = token.isCreator ?? false;
        }
        return session;
      },
    },
    events: {
      signOut: ({ token }) => recordSignOut(token),
    },
  };
  return options;
}

export type SessionUser = { id: string; name: string; email: string; isCreator: boolean };

/** The signed-in user of the current request (server components and route handlers), or null. */
/** Memoized per server render (React `cache`): the layout and the page both ask for it, and
 * each call would decrypt the session cookie again. Outside a render it simply runs. */
export const currentUser = cache(async (): Promise<SessionUser | null> => {
  const session = await getServerSession(authOptions());
  const user = session?.user;
  if (!user?.id) return null;
  return { id: user.id, name: user.name ?? '', email: user.email ?? '', isCreator: user.isCreator };
});

/**
 * The signed-in user and the id of their session, for the realtime-token route only (the sid
 * stays out of the session object, which page scripts can read at /api/auth/session). The user
 * comes through currentUser, so a dead session is null here too; the sid is read from the same
 * cookie, never from an Authorization header.
 */
export interface CurrentSession {
  user: SessionUser;
  /** The `sid` claim; undefined for a token minted before session ids existed. */
  sessionId: string | undefined;
  /** The `auth_time` claim (seconds), kept across cookie refreshes. */
  authTime: number | undefined;
}

export const currentSession = cache(async (): Promise<CurrentSession | null> => {
  const user = await currentUser();
  if (!user) return null;
  const req = { cookies: await cookies(), headers: {} } as unknown as Parameters<typeof getToken>[0]['req'];
  const token = await getToken({ req, secret: env().NEXTAUTH_SECRET, secureCookie: env().NEXTAUTH_URL.startsWith('https://') });
  if (token?.sub !== user.id) return null;
  return { user, sessionId: sessionIdOf(token), authTime: seconds(token.auth_time) };
});
