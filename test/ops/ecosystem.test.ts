/**
 * ecosystem.config.js as PM2 7 reads it: an ES module (the package is `"type": "module"`)
 * loaded with PM2's own Common.parseConfig, which require()s it, in a plain node process (no
 * tsx) with the environment under test. The PM2 daemon itself runs it in test/ops/pm2.test.ts.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { cleanEnv, ecosystemFile, repoRoot } from './support/paths.ts';
import { run } from './support/run.ts';

type App = { name: string; exec_mode: string; instances: unknown; env: Record<string, string>; script: string };

/** The config as PM2 parses it (`how`: 'pm2'), or the module namespace an import() gives. */
async function load(env: Record<string, string | undefined>, how: 'pm2' | 'namespace' = 'pm2'): Promise<{ code: number | null; apps: App[]; keys: string[]; stderr: string }> {
  const script =
    how === 'pm2'
      ? `const fs = require('node:fs');
         const Common = require(${JSON.stringify(path.join(repoRoot, 'node_modules/pm2/lib/Common.js'))});
         const file = ${JSON.stringify(ecosystemFile)};
         const config = Common.parseConfig(fs.readFileSync(file), file);
         process.stdout.write(JSON.stringify({ keys: Object.keys(config), apps: config.apps }));`
      : `import(${JSON.stringify(ecosystemFile)}).then((ns) => process.stdout.write(JSON.stringify({ keys: Object.keys(ns), apps: ns.apps })));`;
  const result = await run(process.execPath, ['-e', script], { cwd: repoRoot, env: cleanEnv({ LOG_DIR: tmpdir(), ...env }), timeoutMs: 20_000 });
  const parsed = result.code === 0 ? (JSON.parse(result.stdout) as { keys: string[]; apps: App[] }) : { keys: [], apps: [] };
  return { code: result.code, stderr: result.stderr, ...parsed };
}

const clear = { WS_INSTANCES: undefined, REDIS_URL: undefined, METRICS_PORT: undefined, WS_PORT: undefined, WS_PUBLISH_URL: undefined, PORT: undefined };

describe('ecosystem.config.js (as PM2 7 loads it)', function () {
  this.timeout(30_000);

  it('is the only ecosystem file: no ecosystem.config.cjs beside it', () => {
    expect(existsSync(ecosystemFile)).to.equal(true);
    expect(existsSync(path.join(repoRoot, 'ecosystem.config.cjs'))).to.equal(false);
  });

  it('PM2’s require() gets the config object itself, with the three apps', async () => {
    const { code, keys, apps, stderr } = await load(clear);
    expect(code, stderr).to.equal(0);
    expect(keys).to.deep.equal(['apps']);
    expect(apps.map((a) => `${a.name}/${a.exec_mode}`)).to.deep.equal(['fonana/fork', 'fonana-ws/cluster', 'fonana-outbox/fork']);
    // Nothing about require(esm) on stderr (no ExperimentalWarning in the operator's terminal).
    expect(stderr).to.equal('');
  });

  it('the module namespace carries `apps` too (what PM2 reads where require() returns the namespace)', async () => {
    const viaPm2 = await load(clear);
    const { code, keys, apps, stderr } = await load(clear, 'namespace');
    expect(code, stderr).to.equal(0);
    expect(keys).to.include.members(['apps', 'default']);
    expect(apps).to.deep.equal(viaPm2.apps);
  });

  it('METRICS_PORT is on by default for fonana-ws (9610 + NODE_APP_INSTANCE), follows the environment, and empty turns it off', async () => {
    const ws = (apps: App[]) => apps.find((a) => a.name === 'fonana-ws')!;
    expect(ws((await load(clear)).apps).env).to.include({ METRICS_PORT: '9610', WS_PORT: '3002' });
    expect(ws((await load({ ...clear, METRICS_PORT: '9700' })).apps).env).to.include({ METRICS_PORT: '9700' });
    expect(ws((await load({ ...clear, METRICS_PORT: '' })).apps).env).to.include({ METRICS_PORT: '' });
    const bad = await load({ ...clear, METRICS_PORT: 'nine' });
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.include('METRICS_PORT must be a non-negative integer');
  });

  it('the app and the relay reach the server at WS_PUBLISH_URL, by default the server’s own port', async () => {
    const byName = (apps: App[]) => Object.fromEntries(apps.map((a) => [a.name, a.env.WS_PUBLISH_URL]));
    expect(byName((await load({ ...clear, WS_PORT: '4100' })).apps)).to.deep.equal({
      fonana: 'http://127.0.0.1:4100',
      'fonana-ws': undefined,
      'fonana-outbox': 'http://127.0.0.1:4100',
    });
    expect(byName((await load({ ...clear, WS_PUBLISH_URL: 'http://10.0.0.5:3002' })).apps)).to.include({ fonana: 'http://10.0.0.5:3002', 'fonana-outbox': 'http://10.0.0.5:3002' });
  });

  it('refuses several fonana-ws processes without REDIS_URL', async () => {
    const { code, stderr } = await load({ ...clear, WS_INSTANCES: '2' });
    expect(code).to.not.equal(0);
    expect(stderr).to.include('WS_INSTANCES=2 needs REDIS_URL');
    const withRedis = await load({ ...clear, WS_INSTANCES: '2', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(withRedis.apps.find((a) => a.name === 'fonana-ws')?.instances).to.equal(2);
  });
});
