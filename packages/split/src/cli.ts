import { ConfigError } from "@enclave/core/config";
import { describeError } from "@enclave/core/log";
import { parseArguments, UsageError, usage } from "./args";
import { readSplitConfig } from "./config";
import { runSplit, SplitError } from "./split";

/** LOG_LEVEL=debug adds the stack of an unexpected failure. */
let debug = false;

async function main(): Promise<number> {
  const args = parseArguments(process.argv.slice(2));
  const config = readSplitConfig();
  debug = config.logLevel === "debug";
  const result = await runSplit({ ...args, targets: config.targets, out: (line) => process.stdout.write(`${line}\n`) });
  return result.ok ? 0 : 1;
}

main()
  .then((code) => {
    process.exitCode = code;
  })
  .catch((error) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${usage}\n`);
      process.exitCode = 2;
      return;
    }
    const lines =
      error instanceof ConfigError
        ? error.problems.map((p) => `split: ${p}`)
        : error instanceof SplitError
          ? [error.message]
          : [`db:split failed: ${String(describeError(error).message ?? describeError(error).error)}`];
    process.stderr.write(`${lines.join("\n")}\n`);
    if (debug && error instanceof Error) process.stderr.write(`${error.stack ?? ""}\n`);
    process.exitCode = 1;
  });
