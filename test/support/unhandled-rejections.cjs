// Unhandled promise rejections fail the run. Mocha 12 re-emits one on `process` and, with no
// other listener there, drops it: a forgotten `await` on a failing assertion would pass. This
// listener (loaded through `require` in .mocharc.json, so it is in place before any test file)
// prints each one at once, with the test or hook that was running, and keeps it; the summary
// reporter counts every kept rejection as a failure, in its `N passed, N failed` line and in the
// exit code.
//
// Uncaught exceptions need nothing here: during the run mocha fails the running test with them,
// and outside it Node exits non-zero.
//
// CommonJS because the reporter require()s it; the state lives on a global symbol so that the
// reporter and this file share it however each was loaded.
'use strict';
const { inspect } = require('node:util');

const KEY = Symbol.for('fonana.test.unhandledRejections');

function install() {
  if (globalThis[KEY]) return globalThis[KEY];
  const state = {
    /** @type {Array<{ reason: unknown, during: string | undefined }>} */
    rejections: [],
    /** Full title of the test or hook that started last (set by the reporter). */
    current: undefined,
  };
  // Mocha's own listener hands each rejection on to the others by emitting it again, so this
  // one hears it twice: once from Node, once from mocha.
  const seen = new WeakSet();
  process.on('unhandledRejection', (reason, promise) => {
    if (promise !== null && typeof promise === 'object') {
      if (seen.has(promise)) return;
      seen.add(promise);
    }
    const during = state.current;
    state.rejections.push({ reason, during });
    const where = during === undefined ? '' : ` (during or after "${during}")`;
    process.stderr.write(`\nUNHANDLED PROMISE REJECTION${where}, counted as a failed test:\n${format(reason)}\n\n`);
  });
  globalThis[KEY] = state;
  return state;
}

function format(reason) {
  if (reason instanceof Error && reason.stack) return reason.stack;
  return inspect(reason, { depth: 4 });
}

module.exports = install();
