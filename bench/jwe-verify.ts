/**
 * CPU per session-token verification: jose's jwtDecrypt (WebCrypto, what the server used to run)
 * against the server's SessionVerifier (node:crypto AES-256-GCM, the key derived once), over the
 * same 2,000 next-auth tokens after a warm-up, CPU time from process.cpuUsage().
 *
 *   npx tsx bench/jwe-verify.ts
 */
import { jwtDecrypt } from 'jose';
import { encode } from 'next-auth/jwt';
import { SessionVerifier, deriveNextAuthKey } from '../websocket-server/src/auth/session-verifier.ts';

const SECRET = 'bench-secret';
const tokens = await Promise.all(Array.from({ length: 2000 }, (_, i) => encode({ token: { sub: `u${i}`, sid: `s${i}` }, secret: SECRET })));
const key = deriveNextAuthKey(SECRET);
const verifier = new SessionVerifier(SECRET);
const jose = (token: string) => jwtDecrypt(token, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'], clockTolerance: 15 });

async function measure(name: string, verify: (token: string) => Promise<unknown>): Promise<void> {
  for (const token of tokens.slice(0, 200)) await verify(token);
  const start = process.cpuUsage();
  for (const token of tokens) await verify(token);
  const used = process.cpuUsage(start);
  console.log(`${name.padEnd(16)} ${((used.user + used.system) / tokens.length).toFixed(1)} µs of CPU per token`);
}
await measure('jose jwtDecrypt', jose);
await measure('SessionVerifier', (token) => verifier.verify(token));
