// mocha's spec output, then the plain lines CI reads, printed once the run is over (after the
// global teardown, so a teardown failure counts too):
//
//   3 pending                                        only when tests were skipped
//   1 unhandled promise rejection counted as failed   only when there were any
//   41 passed, 1 failed                               always, always last
//
// Unhandled rejections (see unhandled-rejections.cjs) are added to the failures, and the exit
// code mocha sets is the total. CommonJS because mocha loads reporters with require().
'use strict';
const Mocha = require('mocha');
const rejections = require('./unhandled-rejections.cjs');

const { EVENT_TEST_BEGIN, EVENT_HOOK_BEGIN } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    this.summaryRunner = runner;
    const remember = (runnable) => {
      rejections.current = runnable.fullTitle();
    };
    runner.on(EVENT_TEST_BEGIN, remember);
    runner.on(EVENT_HOOK_BEGIN, remember);
  }

  /** Called by mocha with the run's failure count (global fixture failures included); `fn`
   * sets the exit code from the count it is given. */
  done(failures, fn) {
    const { passes = 0, pending = 0 } = this.summaryRunner.stats ?? {};
    const rejected = rejections.rejections.length;
    const failed = failures + rejected;
    const lines = [];
    if (pending > 0) lines.push(`${pending} pending`);
    if (rejected > 0) lines.push(`${rejected} unhandled promise rejection${rejected === 1 ? '' : 's'} counted as failed`);
    lines.push(`${passes} passed, ${failed} failed`);
    process.stdout.write(`\n${lines.join('\n')}\n`);
    fn(failed);
    // A rejection after this point (a handle a test left behind) still fails the process; this
    // listener runs after the one mocha's `fn` has just added, which sets the exit code.
    process.on('exit', () => {
      const late = rejections.rejections.length - rejected;
      if (late > 0) {
        process.stderr.write(`${late} unhandled promise rejection${late === 1 ? '' : 's'} after the summary: failing the run\n`);
        if (!process.exitCode) process.exitCode = 1;
      }
    });
  }
}

module.exports = SummaryReporter;
