/** Absolute paths of the repository and the tools the ops tests drive. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const pm2Bin = path.join(repoRoot, 'node_modules/pm2/bin/pm2');
export const tscBin = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
export const tsxBin = path.join(repoRoot, 'node_modules/tsx/dist/cli.mjs');
export const ecosystemFile = path.join(repoRoot, 'ecosystem.config.js');

/** The environment of this test process without what would leak into child tools: mocha's
 * TypeScript loader must not reach processes that are meant to run plain JavaScript. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}
