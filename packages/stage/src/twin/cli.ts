import { startTwin } from "./twin";

/**
 * `npm run stage:twin`: the stage served on 127.0.0.1 until Ctrl-C. `--cron <name>` fires one
 * schedule (by its function's component, e.g. PaymentsCronDue) once the stage is up.
 */
export async function runTwinCli(options: { stage: string; topology: string; port: number | undefined; cron: string | undefined }): Promise<void> {
  const port = options.port ?? Number(process.env.PORT ?? 3100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number (got "${process.env.PORT}")`);
  const quiet = process.env.LOG_LEVEL === "error";
  const twin = await startTwin({
    stage: options.stage,
    topology: options.topology as "per-service" | "single",
    port,
    onLog: (source, line) => {
      if (!quiet) process.stdout.write(`${source.padEnd(28)} ${line}\n`);
    },
  });
  const functions = twin.model.functions.length;
  process.stdout.write(
    [
      `Stage twin ${twin.stage} (${options.topology}) ready in ${twin.readyMs} ms: ${functions} functions, ${twin.model.routes.length} routes, ${twin.model.rules.length} rules, ${twin.model.schedules.length} schedules`,
      `  api        ${twin.url}  (auth, profiles, payments, admin)`,
      `  migrated   ${JSON.stringify(twin.migration)}`,
      `  events     ${twin.url}/_twin/events   dead letters ${twin.url}/_twin/queues   redrive POST ${twin.url}/_twin/queues/redrive`,
      `  aws        ${twin.awsEndpoint}  (SQS and Lambda Invoke: AWS_ENDPOINT_URL=${twin.awsEndpoint} npm run events:dlq -- --stage ${twin.stage})`,
      `ready ${twin.url}`,
      "",
    ].join("\n"),
  );
  if (options.cron) {
    const fn = twin.functionOf(options.cron);
    const schedule = twin.model.schedules.find((s) => s.functionName === fn.name);
    if (!schedule) throw new Error(`${options.cron} is not scheduled in this stage`);
    const run = await twin.scheduler.fire(schedule.name);
    process.stdout.write(`fired ${options.cron}: ${JSON.stringify(run)}\n`);
  }
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write("stopping the stage twin\n");
    await twin.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}
