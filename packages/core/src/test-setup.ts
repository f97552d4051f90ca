import { afterEach, beforeEach } from "vitest";
import { configureLog, type LogLevel } from "./log";

/**
 * Log lines in tests. Many tests fail a request, an event or a migration on purpose, and their
 * error lines would read like real failures; so lines are kept back and shown only with a test
 * that fails (with what was logged since the previous test ended: a beforeAll, a timer). With
 * LOG_LEVEL set, every line at that level is printed as it is written, as in the product.
 */
const chosen = process.env.LOG_LEVEL as LogLevel | undefined;

if (chosen) {
  configureLog({ level: chosen, sink: (line) => process.stdout.write(`${line}\n`) });
} else {
  const limit = 500;
  let kept: string[] = [];
  /** How many of `kept` were written by or before the test that just finished. */
  let finished = 0;
  const keep = (line: string) => {
    kept.push(line);
    if (kept.length > limit) {
      finished = Math.max(0, finished - (kept.length - limit));
      kept = kept.slice(-limit);
    }
  };
  configureLog({ level: "info", sink: keep });

  beforeEach(({ onTestFinished, onTestFailed, task }) => {
    kept = kept.slice(finished);
    finished = 0;
    configureLog({ sink: keep });
    onTestFinished(() => {
      finished = kept.length;
    });
    onTestFailed(() => {
      if (kept.length === 0) return;
      process.stdout.write(`\nlog lines of the failed test "${task.name}":\n${kept.join("\n")}\n\n`);
    });
  });
  // Tests that capture lines put a stdout sink back when done; later lines are kept back again.
  // (Hooks run in reverse order after a test: this one, registered first, runs last.)
  afterEach(() => {
    configureLog({ sink: keep });
  });
}
