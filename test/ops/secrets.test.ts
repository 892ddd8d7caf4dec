/**
 * scripts/secrets.ts and how `npm start` (scripts/start.ts) uses it: secrets generated on the
 * first run into <data dir>/secrets.json (0600 in a 0700 directory), reused later, overridden by
 * the environment; with NODE_ENV=production, no NEXTAUTH_SECRET or no ALLOWED_ORIGINS stops the
 * start at once, and nothing is written. start.ts runs with a controlled environment, a temp
 * FONANA_DATA_DIR and a DATABASE_URL where nothing listens, so it stops at the database step
 * without starting a child.
 */
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateSecrets, productionProblems, SECRETS_FILE } from '../../scripts/secrets.ts';
import { freePort } from '../support/ports.ts';
import { repoRoot } from './support/paths.ts';
import { run, type RunResult } from './support/run.ts';

const START = path.join(repoRoot, 'scripts/start.ts');
const BASE64URL_256_BITS = /^[A-Za-z0-9_-]{43}$/;

const mode = async (file: string) => (await stat(file)).mode & 0o777;
/** Exactly these variables for start.ts: nothing of the test process (its secrets, NODE_ENV). */
const only = (vars: Record<string, string>) =>
  ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...vars }) as Record<string, string | undefined> as NodeJS.ProcessEnv;

describe('secrets of npm start (scripts/secrets.ts, scripts/start.ts)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fonana-secrets-'));
    dirs.push(dir);
    return dir;
  };
  after(async () => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  describe('loadOrCreateSecrets', function () {
    it('first run: generates two distinct 256-bit values into secrets.json, 0600 in a 0700 directory', async function () {
      const dataDir = path.join(await tempDir(), 'data');
      const { secrets, source, file } = await loadOrCreateSecrets(dataDir, {});
      expect(file).to.equal(path.join(dataDir, SECRETS_FILE));
      expect(source).to.deep.equal({ NEXTAUTH_SECRET: 'generated', WS_PUBLISH_SECRET: 'generated' });
      expect(secrets.NEXTAUTH_SECRET).to.match(BASE64URL_256_BITS);
      expect(secrets.WS_PUBLISH_SECRET).to.match(BASE64URL_256_BITS);
      expect(secrets.NEXTAUTH_SECRET).not.to.equal(secrets.WS_PUBLISH_SECRET);
      expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal(secrets);
      expect((await mode(file)).toString(8)).to.equal('600');
      expect((await mode(dataDir)).toString(8)).to.equal('700');
      // Written through a temp file and a rename: nothing else is left beside it.
      expect(await readdir(dataDir)).to.deep.equal([SECRETS_FILE]);
    });

    it('another data directory gets other values (nothing fixed in the code)', async function () {
      const a = await loadOrCreateSecrets(await tempDir(), {});
      const b = await loadOrCreateSecrets(await tempDir(), {});
      expect(a.secrets.NEXTAUTH_SECRET).not.to.equal(b.secrets.NEXTAUTH_SECRET);
      expect(a.secrets.WS_PUBLISH_SECRET).not.to.equal(b.secrets.WS_PUBLISH_SECRET);
    });

    it('later runs reuse the file without rewriting it', async function () {
      const dataDir = await tempDir();
      const first = await loadOrCreateSecrets(dataDir, {});
      const before = await stat(first.file);
      const second = await loadOrCreateSecrets(dataDir, {});
      expect(second.secrets).to.deep.equal(first.secrets);
      expect(second.source).to.deep.equal({ NEXTAUTH_SECRET: 'file', WS_PUBLISH_SECRET: 'file' });
      const after = await stat(first.file);
      expect(after.ino).to.equal(before.ino);
      expect(after.mtimeMs).to.equal(before.mtimeMs);
    });

    it('the environment wins over the file, which keeps its values for runs without it', async function () {
      const dataDir = await tempDir();
      const stored = await loadOrCreateSecrets(dataDir, {});
      const { secrets, source } = await loadOrCreateSecrets(dataDir, { NEXTAUTH_SECRET: 'from-the-environment' });
      expect(secrets).to.deep.equal({ NEXTAUTH_SECRET: 'from-the-environment', WS_PUBLISH_SECRET: stored.secrets.WS_PUBLISH_SECRET });
      expect(source).to.deep.equal({ NEXTAUTH_SECRET: 'environment', WS_PUBLISH_SECRET: 'file' });
      const both = await loadOrCreateSecrets(dataDir, { NEXTAUTH_SECRET: 'n', WS_PUBLISH_SECRET: 'w' });
      expect(both.secrets).to.deep.equal({ NEXTAUTH_SECRET: 'n', WS_PUBLISH_SECRET: 'w' });
      expect(JSON.parse(await readFile(stored.file, 'utf8'))).to.deep.equal(stored.secrets);
    });

    it('both in the environment: no file is written; an empty value counts as unset', async function () {
      const dataDir = path.join(await tempDir(), 'data');
      await loadOrCreateSecrets(dataDir, { NEXTAUTH_SECRET: 'n', WS_PUBLISH_SECRET: 'w' });
      expect(await readdir(path.dirname(dataDir))).to.deep.equal([]);
      const { secrets, source } = await loadOrCreateSecrets(dataDir, { NEXTAUTH_SECRET: '', WS_PUBLISH_SECRET: 'w' });
      expect(source.NEXTAUTH_SECRET).to.equal('generated');
      expect(secrets.NEXTAUTH_SECRET).to.match(BASE64URL_256_BITS);
      // Only what was generated goes to the file; the environment's value does not.
      expect(JSON.parse(await readFile(path.join(dataDir, SECRETS_FILE), 'utf8'))).to.deep.equal({ NEXTAUTH_SECRET: secrets.NEXTAUTH_SECRET });
    });

    it('a file readable by others is tightened to 0600; a broken file is an error naming it', async function () {
      const dataDir = await tempDir();
      const { file } = await loadOrCreateSecrets(dataDir, {});
      await chmod(file, 0o644);
      await loadOrCreateSecrets(dataDir, {});
      expect((await mode(file)).toString(8)).to.equal('600');
      await writeFile(file, '{ not json');
      let error: unknown;
      await loadOrCreateSecrets(dataDir, {}).catch((e: unknown) => (error = e));
      expect(String(error)).to.include(file);
      await writeFile(file, JSON.stringify({ NEXTAUTH_SECRET: 'short' }));
      error = undefined;
      await loadOrCreateSecrets(dataDir, {}).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/NEXTAUTH_SECRET must be a string of at least 32 characters/);
    });
  });

  describe('productionProblems', function () {
    it('names each missing variable and what to set', function () {
      expect(productionProblems({ NEXTAUTH_SECRET: 's', ALLOWED_ORIGINS: 'https://a.example' })).to.deep.equal([]);
      const both = productionProblems({ NEXTAUTH_SECRET: '' });
      expect(both).to.have.length(2);
      expect(both[0]).to.match(/^NEXTAUTH_SECRET is not set: set it to/);
      expect(both[1]).to.match(/^ALLOWED_ORIGINS is not set: set it to .*https:\/\//);
    });
  });

  describe('npm start (node --import tsx scripts/start.ts)', function () {
    let deadDatabase: string;

    before(async function () {
      // A port nothing listens on: start.ts fails at its database step, before any child.
      deadDatabase = `postgresql://postgres@127.0.0.1:${await freePort()}/none`;
    });

    async function start(env: Record<string, string>): Promise<RunResult & { dataDir: string }> {
      const dataDir = path.join(await tempDir(), 'data');
      const result = await run(process.execPath, ['--import', 'tsx', START], {
        cwd: repoRoot,
        env: only({ FONANA_DATA_DIR: dataDir, ...env }),
        timeoutMs: 45_000,
      });
      return { ...result, dataDir };
    }

    it('generates the secrets into FONANA_DATA_DIR on the first run and reads them back on the next', async function () {
      const first = await start({ DATABASE_URL: deadDatabase });
      expect(first.stdout).to.match(/secrets: NEXTAUTH_SECRET generated into .*secrets\.json, WS_PUBLISH_SECRET generated into/);
      const file = path.join(first.dataDir, SECRETS_FILE);
      expect((await mode(file)).toString(8)).to.equal('600');
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
      expect(stored.NEXTAUTH_SECRET).to.match(BASE64URL_256_BITS);
      // It went on to the (unreachable) database, and failed there.
      expect(first.stdout).to.include('database: DATABASE_URL');
      expect(first.code).to.not.equal(0);

      const second = await run(process.execPath, ['--import', 'tsx', START], {
        cwd: repoRoot,
        env: only({ FONANA_DATA_DIR: first.dataDir, DATABASE_URL: deadDatabase }),
        timeoutMs: 45_000,
      });
      expect(second.stdout).to.match(/secrets: NEXTAUTH_SECRET from .*secrets\.json, WS_PUBLISH_SECRET from /);
      expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal(stored);
    });

    const refusals: { missing: string; how: string; env: Record<string, string> }[] = [
      { missing: 'NEXTAUTH_SECRET', how: 'unset', env: { ALLOWED_ORIGINS: 'https://fonana.example.com' } },
      { missing: 'NEXTAUTH_SECRET', how: 'empty', env: { NEXTAUTH_SECRET: '', ALLOWED_ORIGINS: 'https://fonana.example.com' } },
      { missing: 'ALLOWED_ORIGINS', how: 'unset', env: { NEXTAUTH_SECRET: 'a-production-secret-from-the-environment' } },
    ];
    for (const { missing, how, env } of refusals) {
      it(`NODE_ENV=production with ${missing} ${how}: exits non-zero at once, names it, writes nothing`, async function () {
        const result = await start({ NODE_ENV: 'production', DATABASE_URL: deadDatabase, ...env });
        expect(result.code, result.stdout + result.stderr).to.equal(1);
        expect(result.stderr).to.include('NODE_ENV=production: not starting');
        expect(result.stderr).to.include(`${missing} is not set: set it to`);
        const other = missing === 'NEXTAUTH_SECRET' ? 'ALLOWED_ORIGINS' : 'NEXTAUTH_SECRET';
        expect(result.stderr).not.to.include(`${other} is not set`);
        // Before anything: not even the database step, and no file.
        expect(result.stdout).not.to.include('database:');
        expect(await readdir(path.dirname(result.dataDir))).to.deep.equal([]);
      });
    }

    it('NODE_ENV=production with both set: goes on (to the database), and generates no file', async function () {
      const result = await start({
        NODE_ENV: 'production',
        DATABASE_URL: deadDatabase,
        NEXTAUTH_SECRET: 'a-production-secret-from-the-environment',
        ALLOWED_ORIGINS: 'https://fonana.example.com',
      });
      expect(result.stderr).not.to.include('not starting');
      expect(result.stdout).to.include('database: DATABASE_URL');
      expect(result.code).to.not.equal(0);
      expect(await readdir(path.dirname(result.dataDir))).to.deep.equal([]);
    });
  });
});
