// The secrets `npm start` gives the app and the WebSocket server: NEXTAUTH_SECRET (the key that
// encrypts every session token: whoever knows it can mint a session for any user id) and
// WS_PUBLISH_SECRET (the bearer of the server's POST /publish).
//
// Why this module: a secret written in the repository is known to everyone who can read it, so
// a machine started with it accepts forged sessions. Instead, the first `npm start` on a machine
// draws random values and keeps them in <data dir>/secrets.json (mode 0600, directory 0700),
// so sessions survive restarts; later runs read them back. A value set in the environment always
// wins over the file. With NODE_ENV=production nothing is generated or read: the environment
// must provide NEXTAUTH_SECRET and ALLOWED_ORIGINS (productionProblems), and start.ts refuses to
// start without them.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SECRET_NAMES = ['NEXTAUTH_SECRET', 'WS_PUBLISH_SECRET'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];
export type Secrets = Record<SecretName, string>;
/** process.env, or any other set of variables (tests). */
export type Environment = Readonly<Record<string, string | undefined>>;

export const SECRETS_FILE = 'secrets.json';
/** Random bytes per generated secret (256 bits; 43 characters of base64url). */
const SECRET_BYTES = 32;
/** Shortest value accepted from the file: anything shorter was not written by this module. */
const MIN_FILE_SECRET_LENGTH = 32;

export interface LoadedSecrets {
  secrets: Secrets;
  /** Where each value came from. */
  source: Record<SecretName, 'environment' | 'file' | 'generated'>;
  /** The file holding the generated values (whether or not it was read or written this run). */
  file: string;
}

/** Unset and empty are the same: an empty secret is no secret. */
function fromEnv(env: Environment, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

async function readSecretsFile(file: string): Promise<Partial<Secrets>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON: fix it, or delete it to generate new secrets (signs everyone out)`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error(`${file} must hold a JSON object`);
  const out: Partial<Secrets> = {};
  for (const name of SECRET_NAMES) {
    const value = (data as Record<string, unknown>)[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length < MIN_FILE_SECRET_LENGTH) {
      throw new Error(`${file}: ${name} must be a string of at least ${MIN_FILE_SECRET_LENGTH} characters`);
    }
    out[name] = value;
  }
  // Someone loosened it (or copied it with a umask): only this user may read the key.
  if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
  return out;
}

/** Writes `secrets` to `file` atomically: a temp file in the same directory, then rename. */
async function writeSecretsFile(file: string, secrets: Partial<Secrets>): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory as it was; this one holds a key.
  await chmod(dir, 0o700);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // `wx`: never follow or reuse something already at the temp path. The mode applies at
    // creation, so the secret is never readable by others, not even for an instant.
    await writeFile(temp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * The two secrets for a non-production start: each from the environment if set there, else from
 * `<dataDir>/secrets.json`, else freshly generated and added to that file. The file is only
 * written when something had to be generated.
 */
export async function loadOrCreateSecrets(dataDir: string, env: Environment = process.env): Promise<LoadedSecrets> {
  const file = path.join(path.resolve(dataDir), SECRETS_FILE);
  const fromEnvironment: Partial<Secrets> = {};
  for (const name of SECRET_NAMES) {
    const value = fromEnv(env, name);
    if (value !== undefined) fromEnvironment[name] = value;
  }
  // Both in the environment: the file is neither needed nor touched.
  const stored = SECRET_NAMES.every((name) => fromEnvironment[name] !== undefined) ? {} : await readSecretsFile(file);
  // Keeps what the file had, a value overridden by the environment this run included, so that a
  // later run without that variable still finds the same value.
  const fileSecrets: Partial<Secrets> = { ...stored };
  const secrets = {} as Secrets;
  const source = {} as LoadedSecrets['source'];
  for (const name of SECRET_NAMES) {
    const inEnvironment = fromEnvironment[name];
    const inFile = stored[name];
    if (inEnvironment !== undefined) {
      secrets[name] = inEnvironment;
      source[name] = 'environment';
    } else if (inFile !== undefined) {
      secrets[name] = inFile;
      source[name] = 'file';
    } else {
      secrets[name] = fileSecrets[name] = randomBytes(SECRET_BYTES).toString('base64url');
      source[name] = 'generated';
    }
  }
  if (Object.values(source).includes('generated')) await writeSecretsFile(file, fileSecrets);
  return { secrets, source, file };
}

/**
 * What a production start lacks, one line per variable with what to set; empty when it may
 * start. Production never falls back on generated values: every node and every process of a
 * deployment must share one NEXTAUTH_SECRET, and the WebSocket server must know which sites may
 * open sockets with the session cookie.
 */
export function productionProblems(env: Environment = process.env): string[] {
  const problems: string[] = [];
  if (fromEnv(env, 'NEXTAUTH_SECRET') === undefined) {
    problems.push(
      'NEXTAUTH_SECRET is not set: set it to a long random value (e.g. `openssl rand -base64 32`), the same for the app and every WebSocket server node',
    );
  }
  if (fromEnv(env, 'ALLOWED_ORIGINS') === undefined) {
    problems.push(
      'ALLOWED_ORIGINS is not set: set it to the public origin(s) of the site, comma-separated (e.g. ALLOWED_ORIGINS=https://fonana.example.com)',
    );
  }
  return problems;
}
