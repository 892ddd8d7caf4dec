// PM2's entry for the outbox relay (ecosystem.config.cjs, app `fonana-outbox`). PM2 loads a
// `.ts` script by looking for ts-node; a `.mjs` one it imports. This registers tsx (a runtime
// dependency, as `node --import tsx` does) and runs scripts/outbox-relay.ts, which shares lib/
// with the app and is not compiled ahead of time.
import 'tsx';

await import('./outbox-relay.ts');
