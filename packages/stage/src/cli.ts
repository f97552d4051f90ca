import { parseArgs } from "node:util";
import { captureStageModel } from "./capture/stage";
import { formatPlan } from "./plan";

/**
 * `npm run stage:plan -- --stage pr-42 [--topology single] [--json]`: the stage as sst.config.ts
 * declares it, captured offline. `npm run stage:twin`: that stage, run on this machine.
 */

const usage = `usage:
  npm run stage:plan -- [--stage pr-42] [--topology per-service|single] [--json]
  npm run stage:twin -- [--stage pr-42] [--topology per-service|single] [--port 3100] [--cron <name>]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        stage: { type: "string", default: "pr-42" },
        topology: { type: "string", default: "per-service" },
        port: { type: "string" },
        cron: { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${usage}`);
  }
  const stage = String(values.stage);
  const topology = String(values.topology);
  if (!/^[a-z][a-z0-9-]{0,29}$/.test(stage)) fail(`--stage must be a stage name like pr-42 or production (got "${stage}")`);
  if (topology !== "per-service" && topology !== "single") fail(`--topology must be per-service or single (got "${topology}")`);

  if (command === "plan") {
    const { model } = await captureStageModel({ stage, topology });
    if (values.json) {
      // Names of variables only: values include secrets.
      const functions = model.functions.map(({ environment, ...fn }) => ({ ...fn, environment: Object.keys(environment).sort() }));
      process.stdout.write(`${JSON.stringify({ ...model, functions }, null, 2)}\n`);
    } else {
      process.stdout.write(formatPlan(model));
    }
    if (model.errors.length > 0) process.exit(1);
    return;
  }
  if (command === "twin") {
    const { runTwinCli } = await import("./twin/cli");
    await runTwinCli({ stage, topology, port: values.port ? Number(values.port) : undefined, cron: values.cron as string | undefined });
    return;
  }
  fail(usage);
}

await main();
