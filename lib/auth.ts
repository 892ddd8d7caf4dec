/**
 * next-auth v4: a Credentials provider against the User table (bcrypt hashes), JWT sessions.
 *
 * The session cookie is a JWE that the WebSocket server decrypts with the same NEXTAUTH_SECRET,
 * so the user id must be in `sub` (next-auth puts `user.id` there on sign-in) and nothing the
 * server needs may live only in a database session.
 */
import { cache } from 'react';
import bcrypt from 'bcryptjs';
import { getServerSession, type NextAuthOptions } from 'next-auth';
import CredentialsProvider from 'next-auth/providers/credentials';
import { z } from 'zod';
import { db } from './db.ts';
import { env } from './env.ts';
import { REALTIME_TOKEN_SCOPE } from './realtime/browser-token.ts';

const credentialsSchema = z.object({
  email: z.string().trim().toLowerCase().email().max(320),
  password: z.string().min(1).max(200),
});

// Compared against when the e-mail is unknown, so that a wrong e-mail costs as much time as a
// wrong password and response times do not reveal which addresses have accounts.
const DUMMY_HASH = '$2b$10$Ibg1HWkIeW4.9N/Q2145fez9gDvBs0IfWOWyerzGFfAP4yZMk4KVu';

let options: NextAuthOptions | undefined;

export function authOptions(): NextAuthOptions {
  options ??= {
    secret: env().NEXTAUTH_SECRET,
    session: { strategy: 'jwt' },
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
      // `user` is only present on sign-in; next-auth has already copied user.id into `sub`.
      jwt({ token, user }) {
        // A realtime token (lib/realtime/browser-token.ts) is readable by scripts; it opens a
        // socket and nothing else, so it never counts as a session here.
        if (token.scope === REALTIME_TOKEN_SCOPE) return {};
        if (user) token.isCreator = user.isCreator ?? false;
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
