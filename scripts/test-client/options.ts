/**
 * Command-line options of the test client. Every option has an environment fallback so that an
 * operator with the server's environment loaded can run it with no flags at all.
 */
import { parseArgs } from 'node:util';

export const USAGE = `Usage: npm run ws:test-client -- [options]

Connects to the WebSocket server as a real user and checks what that user may and may not do.
Prints a pass/fail table; exits 0 when every check passed, 1 when one failed, 2 on bad usage.

Who to connect as (one of):
  --email EMAIL          mint a session token for this user: needs NEXTAUTH_SECRET and
                         DATABASE_URL (to look the user up), like the Next.js app would
  --email EMAIL --app-url URL [--password PW]
                         sign in through the app instead (NextAuth credentials flow) and use
                         the session cookie it sets; needs no secret or database access
  --token JWE            use this session token as is (e.g. copied from a browser)

Where:
  --url URL              WebSocket URL (default ws://127.0.0.1:$WS_PORT/ws, WS_PORT=3002);
                         a deployment: wss://example.com/ws
  --origin ORIGIN        Origin header (default: the origin of --app-url, else of --url
                         with http(s) for ws(s))
  --auth cookie|header|query
                         how the token travels (default cookie, as a browser sends it)

Publishing the test event (the first available is used):
  --redis-url URL        Redis PUBLISH (default $REDIS_URL), prefix --redis-prefix or
                         $REDIS_CHANNEL_PREFIX (default ws:)
  --publish-url URL      POST /publish base URL (default: http(s) of --url when it is not
                         behind /ws; $WS_PUBLISH_URL), secret --publish-secret or
                         $WS_PUBLISH_SECRET
  --no-publish           skip the delivery check

Channels checked (found in the database with --email and DATABASE_URL, else give them):
  --other-user-id ID     someone else (default: another user, else a made-up id)
  --creator-id ID        a creator, for creator_{id}
  --public-post-id ID    a post everyone may read, for post_{id}
  --forbidden-post-id ID a locked post this user may not read

  --timeout MS           per step (default 5000)
  --json                 print the results as JSON instead of a table
  -h, --help`;

export interface Options {
  url: string;
  origin: string;
  auth: 'cookie' | 'header' | 'query';
  email: string | undefined;
  password: string | undefined;
  appUrl: string | undefined;
  token: string | undefined;
  nextAuthSecret: string | undefined;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisPrefix: string;
  publishUrl: string | undefined;
  publishSecret: string | undefined;
  publish: boolean;
  otherUserId: string | undefined;
  creatorId: string | undefined;
  publicPostId: string | undefined;
  forbiddenPostId: string | undefined;
  timeoutMs: number;
  json: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** POST /publish lives on the server's own port, never behind nginx's /ws: only a direct
 * ws://host:port URL tells where it is. */
function publishUrlFromWsUrl(wsUrl: URL): string | undefined {
  if (wsUrl.port === '') return undefined;
  return `${wsUrl.protocol === 'wss:' ? 'https:' : 'http:'}//${wsUrl.host}`;
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      origin: { type: 'string' },
      auth: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'app-url': { type: 'string' },
      token: { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-prefix': { type: 'string' },
      'publish-url': { type: 'string' },
      'publish-secret': { type: 'string' },
      'no-publish': { type: 'boolean' },
      'other-user-id': { type: 'string' },
      'creator-id': { type: 'string' },
      'public-post-id': { type: 'string' },
      'forbidden-post-id': { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';

  const or = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);
  const url = values.url ?? `ws://127.0.0.1:${env.WS_PORT || '3002'}/ws`;
  let wsUrl: URL;
  try {
    wsUrl = new URL(url);
  } catch {
    throw new UsageError(`--url is not a URL: ${url}`);
  }
  if (wsUrl.protocol !== 'ws:' && wsUrl.protocol !== 'wss:') throw new UsageError('--url must start with ws:// or wss://');

  const auth = values.auth ?? 'cookie';
  if (auth !== 'cookie' && auth !== 'header' && auth !== 'query') throw new UsageError('--auth must be cookie, header or query');
  if (!values.email && !values.token) throw new UsageError('give --email (and NEXTAUTH_SECRET + DATABASE_URL, or --app-url) or --token');
  if (values['app-url'] && !values.email) throw new UsageError('--app-url needs --email (and --password)');
  const timeoutMs = Number(values.timeout ?? 5_000);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout must be a positive number of milliseconds');

  return {
    url: wsUrl.toString(),
    // Behind nginx the page and /ws share an origin, which is what ALLOWED_ORIGINS lists.
    origin: values.origin ?? (values['app-url'] ? new URL(values['app-url']).origin : `${wsUrl.protocol === 'wss:' ? 'https:' : 'http:'}//${wsUrl.host}`),
    auth,
    email: values.email,
    password: values.password ?? or(env.TEST_CLIENT_PASSWORD),
    appUrl: values['app-url'],
    token: values.token,
    nextAuthSecret: or(env.NEXTAUTH_SECRET),
    databaseUrl: or(env.DATABASE_URL),
    redisUrl: values['redis-url'] ?? or(env.REDIS_URL),
    redisPrefix: values['redis-prefix'] ?? or(env.REDIS_CHANNEL_PREFIX) ?? 'ws:',
    publishUrl: values['publish-url'] ?? or(env.WS_PUBLISH_URL) ?? publishUrlFromWsUrl(wsUrl),
    publishSecret: values['publish-secret'] ?? or(env.WS_PUBLISH_SECRET),
    publish: !values['no-publish'],
    otherUserId: values['other-user-id'],
    creatorId: values['creator-id'],
    publicPostId: values['public-post-id'],
    forbiddenPostId: values['forbidden-post-id'],
    timeoutMs,
    json: values.json ?? false,
  };
}
