/**
 * `npm run ws:test-client -- …`: an end-to-end check of a running WebSocket server, as a real
 * user, for operators (after a deploy) and integrators (is my token accepted? what may I
 * subscribe to?). Works against a local server (ws://127.0.0.1:3002/ws) and a deployment
 * (wss://example.com/ws). See options.ts for the flags, checks.ts for what is checked.
 *
 * Exit codes: 0 every check passed (skips allowed), 1 a check failed, 2 usage or setup error.
 */
import { runChecks } from './checks.ts';
import { mintForEmail, signInThroughApp, type Identity } from './identity.ts';
import { parseOptions, USAGE, UsageError, type Options } from './options.ts';
import { choosePublisher } from './publisher.ts';
import { formatTable, summary } from './report.ts';

async function identify(options: Options): Promise<Identity> {
  if (options.token) return { userId: undefined, token: options.token, cookies: undefined, source: 'token from --token' };
  const email = options.email ?? '';
  if (options.appUrl) return signInThroughApp(options.appUrl, email, options.password);
  return mintForEmail(email, options.nextAuthSecret, options.databaseUrl);
}

async function main(): Promise<number> {
  let options: Options;
  try {
    const parsed = parseOptions(process.argv.slice(2), process.env);
    if (parsed === 'help') {
      console.log(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const log = options.json ? () => {} : (line: string) => process.stderr.write(`  … ${line}\n`);

  let identity: Identity;
  try {
    identity = await identify(options);
  } catch (error) {
    console.error(`cannot get a session: ${(error as Error).message}`);
    return 2;
  }
  if (!options.json) console.log(`WebSocket test client → ${options.url} (${identity.source}, token via ${options.auth}, Origin ${options.origin})\n`);

  const results = await runChecks({
    connect: { url: options.url, origin: options.origin, auth: options.auth, timeoutMs: options.timeoutMs },
    identity,
    given: {
      otherUserId: options.otherUserId,
      creatorId: options.creatorId,
      publicPostId: options.publicPostId,
      forbiddenPostId: options.forbiddenPostId,
    },
    databaseUrl: options.databaseUrl,
    publisher: choosePublisher(options, options.timeoutMs),
    publishDisabled: !options.publish,
    timeoutMs: options.timeoutMs,
    log,
  });

  const counts = summary(results);
  if (options.json) console.log(JSON.stringify({ url: options.url, ...counts, results }, null, 2));
  else console.log(`\n${formatTable(results)}`);
  return counts.failed === 0 ? 0 : 1;
}

// Exit explicitly once the report is out: fetch's keep-alive sockets and the closing
// WebSocket would otherwise hold the process for several more seconds.
const exit = (code: number) => process.stdout.write('', () => process.exit(code));
main().then(exit, (error: unknown) => {
  console.error(`test client crashed: ${error instanceof Error ? error.stack : String(error)}`);
  exit(2);
});
