/**
 * Who the test client connects as. Three ways, as an operator has them at hand:
 * - mint: the session JWE the Next.js app would set, made with next-auth's own `encode` and
 *   NEXTAUTH_SECRET, for a user looked up by email in DATABASE_URL;
 * - sign in: NextAuth's credentials flow against the running app (GET /api/auth/csrf, then POST
 *   /api/auth/callback/credentials), keeping the session cookie(s) it sets, exactly what a
 *   browser then sends with the WebSocket handshake;
 * - a token given as is.
 */
import { encode } from 'next-auth/jwt';
import pg from 'pg';

export interface Identity {
  /** The user id when known before connecting (the `connected` frame tells it anyway). */
  userId: string | undefined;
  /** The session token (JWE); for a cookie made of chunks, the chunks joined. */
  token: string;
  /** `name=value` pairs of the session cookie as the app set it (chunked .0/.1… kept apart). */
  cookies: string[] | undefined;
  source: string;
}

/** Short-lived: the token only has to outlive this run. */
const MINTED_TOKEN_MAX_AGE_S = 10 * 60;

export async function mintForEmail(email: string, secret: string | undefined, databaseUrl: string | undefined): Promise<Identity> {
  if (!secret) throw new Error('minting a token needs NEXTAUTH_SECRET (the app’s secret)');
  if (!databaseUrl) throw new Error('minting a token needs DATABASE_URL to look the user up (or use --app-url)');
  const user = await withDatabase(databaseUrl, async (db) => {
    const { rows } = await db.query<{ id: string; name: string; isCreator: boolean }>(
      'SELECT id, name, "isCreator" FROM "User" WHERE email = $1',
      [email.trim().toLowerCase()],
    );
    return rows[0];
  });
  if (!user) throw new Error(`no user with email ${email} in the database`);
  const token = await encode({
    token: { sub: user.id, name: user.name, email, isCreator: user.isCreator },
    secret,
    maxAge: MINTED_TOKEN_MAX_AGE_S,
  });
  return { userId: user.id, token, cookies: undefined, source: `minted for ${email} (${user.id})` };
}

const SESSION_COOKIE = /^(__Secure-)?next-auth\.session-token(\.\d+)?$/;

function cookiePairs(response: Response): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const header of response.headers.getSetCookie()) {
    const [pair = ''] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq > 0) pairs.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return pairs;
}

export async function signInThroughApp(appUrl: string, email: string, password: string | undefined): Promise<Identity> {
  if (!password) throw new Error('signing in through the app needs --password (or TEST_CLIENT_PASSWORD)');
  const base = appUrl.replace(/\/+$/, '');
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

  const csrfResponse = await fetch(`${base}/api/auth/csrf`);
  if (!csrfResponse.ok) throw new Error(`GET /api/auth/csrf answered ${csrfResponse.status}`);
  for (const [k, v] of cookiePairs(csrfResponse)) jar.set(k, v);
  const { csrfToken } = (await csrfResponse.json()) as { csrfToken?: string };
  if (!csrfToken) throw new Error('GET /api/auth/csrf returned no csrfToken');

  const signIn = await fetch(`${base}/api/auth/callback/credentials`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader() },
    body: new URLSearchParams({ csrfToken, email, password, callbackUrl: base, json: 'true' }),
  });
  for (const [k, v] of cookiePairs(signIn)) jar.set(k, v);
  const session = [...jar].filter(([name, value]) => SESSION_COOKIE.test(name) && value !== '');
  if (session.length === 0) throw new Error(`sign-in as ${email} was refused (HTTP ${signIn.status}, no session cookie)`);
  // Chunks in order (.0, .1, …): their concatenation is the JWE.
  session.sort(([a], [b]) => Number(a.split('.').pop()) - Number(b.split('.').pop()));

  // The app's own session endpoint says who this is.
  const me = await fetch(`${base}/api/auth/session`, { headers: { cookie: cookieHeader() } });
  const body = me.ok ? ((await me.json()) as { user?: { id?: string } }) : {};
  return {
    userId: body.user?.id,
    token: session.map(([, value]) => value).join(''),
    cookies: session.map(([name, value]) => `${name}=${value}`),
    source: `signed in at ${base} as ${email}`,
  };
}

export async function withDatabase<T>(databaseUrl: string, work: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}
