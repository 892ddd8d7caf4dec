/**
 * ops/logrotate/fonana, installed by `scripts/setup-websocket-server.sh --install-logrotate`
 * into a LOGROTATE_DIR of this test's own (never /etc), then run by the real logrotate on a
 * LOG_DIR of its own: copytruncate keeps a writer that holds the file open (as the PM2 daemon
 * does, appending) writing into the same file, at its new start.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { cleanEnv, repoRoot } from './support/paths.ts';
import { run, runOk } from './support/run.ts';

const SETUP = path.join(repoRoot, 'scripts/setup-websocket-server.sh');

describe('log rotation (ops/logrotate/fonana)', function () {
  this.timeout(30_000);

  let scratch: string;
  let etc: string;
  let logDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'fonana-logrotate-'));
    etc = path.join(scratch, 'logrotate.d');
    logDir = path.join(scratch, 'logs');
    await mkdir(etc);
    await writeFile(path.join(scratch, 'empty.env'), '');
    env = cleanEnv({ NO_COLOR: '1', ENV_FILE: path.join(scratch, 'empty.env'), LOGROTATE_DIR: etc, LOG_DIR: logDir });
  });

  after(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('setup-websocket-server.sh --install-logrotate writes the config for LOG_DIR, 0644, and logrotate -d accepts it', async () => {
    const { stdout } = await runOk('bash', [SETUP, '--install-logrotate'], { env, cwd: repoRoot });
    expect(stdout).to.include(`wrote ${etc}/fonana`);
    expect(stdout).to.include('logrotate -d accepts it');
    const installed = await readFile(path.join(etc, 'fonana'), 'utf8');
    expect(installed).to.not.include('@');
    expect(installed).to.include(`${logDir}/*.log {`);
    expect(installed).to.match(/^\s+copytruncate$/m);
    expect(installed).to.match(/^\s+su root root$/m);
    expect((await stat(path.join(etc, 'fonana'))).mode & 0o777).to.equal(0o644);
    expect(await readdir(etc)).to.deep.equal(['fonana']);
  });

  it('refuses when LOGROTATE_DIR does not exist, and writes nothing', async () => {
    const missing = path.join(scratch, 'no-such-dir');
    const result = await run('bash', [SETUP, '--install-logrotate'], { env: { ...env, LOGROTATE_DIR: missing }, cwd: repoRoot });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(`${missing} does not exist`);
  });

  it('rotates with copytruncate: the old lines in a dated copy, the open file truncated, later writes at its start', async () => {
    const file = path.join(logDir, 'fonana-ws.err.log');
    // Opened for appending and kept open, like PM2's log streams (flags 'a').
    const fd = openSync(file, 'a');
    try {
      writeSync(fd, '{"message":"before rotation"}\n'.repeat(100));
      await runOk('logrotate', ['-f', '-s', path.join(scratch, 'state'), path.join(etc, 'fonana')], { timeoutMs: 20_000 });
      expect((await stat(file)).size, 'the live file after the rotation').to.equal(0);
      writeSync(fd, '{"message":"after rotation"}\n');
    } finally {
      closeSync(fd);
    }
    // Appended at offset 0: no hole of NUL bytes where the old content was.
    expect(await readFile(file, 'utf8')).to.equal('{"message":"after rotation"}\n');
    const rotated = (await readdir(logDir)).filter((name) => name !== 'fonana-ws.err.log');
    expect(rotated).to.have.length(1);
    expect(rotated[0]).to.match(/^fonana-ws\.err\.log-\d{8}-\d+$/);
    const copy = await readFile(path.join(logDir, rotated[0]!), 'utf8');
    expect(copy.split('\n').filter(Boolean)).to.have.length(100);
  });
});
