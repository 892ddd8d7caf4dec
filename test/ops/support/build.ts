/**
 * A production build of the WebSocket server for one test file, made with the same
 * tsconfig.build.json as `npm run ws:build` but into a directory of its own, so a test never
 * rewrites websocket-server/dist under a server that someone else (another test run, a local
 * deployment) is running from it. The directory sits inside websocket-server/dist/ because the
 * output must resolve `jose`, `ws`… from websocket-server/node_modules and the root
 * node_modules, and be ESM through websocket-server/package.json, exactly like the real build.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot, tscBin } from './paths.ts';
import { runOk } from './run.ts';

export interface ServerBuild {
  /** What WS_DIST_DIR should be set to (ecosystem.config.js, scripts). */
  distDir: string;
  entry: string;
  ms: number;
  remove(): Promise<void>;
}

export async function buildServer(): Promise<ServerBuild> {
  const distDir = path.join(repoRoot, 'websocket-server/dist', `test-${randomBytes(4).toString('hex')}`);
  const remove = () => rm(distDir, { recursive: true, force: true });
  try {
    const { ms } = await runOk(process.execPath, [tscBin, '-p', path.join(repoRoot, 'websocket-server/tsconfig.build.json'), '--outDir', distDir], {
      timeoutMs: 120_000,
    });
    return { distDir, entry: path.join(distDir, 'websocket-server/src/main.js'), ms, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
