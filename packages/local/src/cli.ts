import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { ConfigError, describeError, log, redactSecrets } from "@enclave/core";
import { seedSets } from "@enclave/core/seed";
import { tenantEnv } from "@enclave/core/tenants";
import { serve } from "@hono/node-server";
import { type Delivery, listDeliveries } from "./bus";
import { readLocalConfig } from "./config";
import {
  configProblems,
  createLocalRuntime,
  databaseLocation,
  type LocalRuntime,
  migrateService,
  openServiceDatabases,
  repositoryRoot,
  StartupError,
  tenantStateDir,
} from "./runtime";
import { isSeedSet, seed } from "./seed";
import { localServices } from "./services";
import { chosenTenants, createTenantsRuntime, readTenantRegistry, type TenantsRuntime } from "./tenants";

const serviceNames = localServices.map((s) => s.module.manifest.name);

const usage = [
  "usage:",
  "  npm run dev                                   run every service on PORT (default 3000)",
  "  npm run db:migrate [-- --service <name>] [--tenant <id>|all]  apply pending migrations (every tenant when TENANTS_FILE is set)",
  "  npm run db:generate -- --service <name> [--name <migration name>]",
  "  npm run db:seed [-- --env <set>] [--service <name>] [--tenant <id>|all]",
  `                                                apply a seed set (essential first), then stop; sets: ${seedSets.join(", ")} (default development)`,
  "  npm run events:dlq                            list dead-lettered events",
  "  npm run events:redrive [-- <delivery id>...]  deliver dead letters again (all when none given)",
  "  npm run events:dlq -- --stage <s> [--job <name>]      a deployed stage's dead-letter queues (AWS environment)",
  "  npm run events:redrive -- --stage <s> [--job <name>]  send them back to the functions they failed in",
  `services: ${serviceNames.join(", ")}`,
].join("\n");

/** A command line that cannot be run as typed: said in one line, followed by the usage. */
class UsageError extends Error {}

interface Command {
  run(): unknown;
  /** The `--<name> <value>` options it takes. */
  options?: string[];
  /** Whether it takes plain arguments (delivery ids). */
  positional?: boolean;
}

const [command = "dev", ...args] = process.argv.slice(2);
const values = new Map<string, string>();
const positional: string[] = [];

function parseArguments({ options = [], positional: takesPositional = false }: Command) {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith("--")) {
      if (!takesPositional) throw new UsageError(`${command} takes no argument "${arg}"`);
      positional.push(arg);
      continue;
    }
    const name = arg.slice(2);
    if (!options.includes(name)) throw new UsageError(`${command} has no option ${arg}`);
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
    values.set(name, value);
    i++;
  }
}

function chosenServices() {
  const only = values.get("service");
  if (only && !serviceNames.includes(only)) throw new UsageError(`unknown service "${only}" (known: ${serviceNames.join(", ")})`);
  return localServices.filter((s) => !only || s.module.manifest.name === only);
}

/** Why the server cannot listen, with the variable to change. */
function listenFailure(error: unknown, port: number, host: string): StartupError {
  const code = (error as NodeJS.ErrnoException).code;
  const problem =
    code === "EADDRINUSE"
      ? `port ${port} is already in use: set PORT to a free port (PORT=${port < 65535 ? port + 1 : port - 1} npm run dev)`
      : code === "EACCES"
        ? `port ${port} needs privileges: set PORT to a port above 1023 (PORT=3000 npm run dev)`
        : code === "EADDRNOTAVAIL"
          ? `HOST: ${host} is not an address of this machine (HOST=127.0.0.1 npm run dev)`
          : code === "ENOTFOUND" || code === "EAI_AGAIN"
            ? `HOST: cannot resolve "${host}" (HOST=127.0.0.1 npm run dev)`
            : `cannot listen on ${host}:${port}: ${redactSecrets((error as Error).message)}`;
  return new StartupError([problem], { cause: error });
}

async function dev() {
  const started = performance.now();
  const { PORT, HOST, TENANTS_FILE } = readLocalConfig();
  // The port is taken before the slow part of start-up (databases, migrations): a port in use
  // fails at once. Requests arriving meanwhile wait for the runtime instead of being refused.
  let ready: (runtime: LocalRuntime | TenantsRuntime) => void = () => {};
  let failed: (error: unknown) => void = () => {};
  const runtimeReady = new Promise<LocalRuntime | TenantsRuntime>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  runtimeReady.catch(() => {}); // reported below, by the start-up itself
  const server = serve({ fetch: async (request, env) => (await runtimeReady).app.fetch(request, env), port: PORT, hostname: HOST });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", (error) => reject(listenFailure(error, PORT, HOST)));
  });
  let runtime: LocalRuntime | TenantsRuntime;
  try {
    runtime = TENANTS_FILE ? await createTenantsRuntime() : await createLocalRuntime();
    ready(runtime);
  } catch (error) {
    failed(error);
    server.close();
    throw error;
  }
  const address = server.address() as AddressInfo | string | null;
  const port = typeof address === "object" && address ? address.port : PORT;
  const base = `http://${HOST === "0.0.0.0" ? "localhost" : HOST}:${port}`;
  const readyMs = Math.round(performance.now() - started);
  process.stdout.write(
    [
      "",
      `Enclave is running (stage ${runtime.config.STAGE}, data in ${runtime.stageDir}), ready in ${readyMs} ms`,
      ...localServices.map((s) => `  ${s.module.manifest.name.padEnd(9)} ${base}${s.module.manifest.prefix}`),
      `  docs      ${base}/docs`,
      `  events    ${base}/_local/events (recent events, deliveries, dead letters)`,
      ...("cells" in runtime ? [`  tenants   ${[...runtime.cells.keys()].join(", ")} (X-Tenant-Id, or the access token's tid, picks one)`] : []),
      "Press Ctrl-C to stop.",
      "",
    ].join("\n"),
  );
  log("info", "ready", { readyMs, port });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "shutting down", { signal });
    // Stop taking requests and let those in flight finish, then the bus, crons and databases.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await runtime.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

async function migrateCommand() {
  const config = readLocalConfig();
  const stageDir = resolve(config.DATA_DIR, config.STAGE);
  const services = chosenServices();
  const tenants = tenantsOf("db:migrate");
  // Without tenants, one run on the environment's databases; with them, one per tenant on its own.
  for (const tenant of tenants ?? [undefined]) {
    const env = tenant ? tenant.env : process.env;
    const dir = tenant ? tenantStateDir(stageDir, tenant.id) : stageDir;
    const prefix = tenant ? `${tenant.id}: ` : "";
    const locations = new Map(services.map(({ module }) => [module.manifest.name, databaseLocation(module.manifest.name, env, dir)]));
    const opened = await openServiceDatabases(locations, 1).catch((error: unknown) => {
      if (!(tenant && error instanceof StartupError)) throw error;
      throw new StartupError(
        error.problems.map((problem) => prefix + problem),
        { cause: error },
      );
    });
    try {
      for (const [name, location] of locations) {
        const applied = await migrateService(name, opened.byService.get(name)!, location);
        process.stdout.write(`${prefix}${name}: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}\n`);
      }
    } finally {
      await opened.close();
    }
  }
}

/**
 * The tenants a command runs for: those `--tenant` names (`all` by default) when TENANTS_FILE is
 * set, each with its environment; undefined without a registry, where `--tenant` is refused.
 */
function tenantsOf(command: string): { id: string; env: Record<string, string | undefined> }[] | undefined {
  const registry = readTenantRegistry(readLocalConfig());
  const option = values.get("tenant");
  if (!registry) {
    if (option !== undefined) throw new StartupError([`${command}: --tenant ${option}: tenants are not configured`]);
    return undefined;
  }
  const ids = chosenTenants(registry, option);
  if (!ids) throw new UsageError(`unknown tenant "${option}" (known: ${[...registry.tenants.keys()].join(", ")}, or all)`);
  return ids.map((id) => ({ id, env: tenantEnv(process.env, registry.tenants.get(id)!) }));
}

function generateCommand() {
  const name = values.get("service");
  if (!name) throw new UsageError("db:generate needs --service <name>");
  chosenServices();
  const extra = values.has("name") ? ["--name", values.get("name") as string] : [];
  const result = spawnSync("drizzle-kit", ["generate", "--config", `packages/${name}/drizzle.config.ts`, ...extra], { stdio: "inherit", cwd: repositoryRoot });
  if (result.error) throw new Error(`cannot run drizzle-kit: ${result.error.message}`);
  process.exitCode = result.status ?? 1;
}

async function seedCommand() {
  const environment = values.get("env") ?? "development";
  if (!isSeedSet(environment)) throw new UsageError(`unknown seed set "${environment}" (one of: ${seedSets.join(", ")})`);
  const services = chosenServices();
  const tenants = tenantsOf("db:seed");
  for (const tenant of tenants ?? [undefined]) {
    const sets = await seed(environment, tenant?.env ?? process.env, services, tenant?.id);
    process.stdout.write(`${tenant ? `${tenant.id}: ` : ""}seeded ${sets.join(", ")} into ${services.map((s) => s.module.manifest.name).join(", ")}\n`);
  }
}

async function redriveCommand() {
  const config = readLocalConfig();
  const ids = positional;
  let response: Response | undefined;
  try {
    response = await fetch(`http://127.0.0.1:${config.PORT}/_local/events/redrive`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ids.length > 0 ? { ids } : {}),
    });
  } catch {
    response = undefined; // no server running
  }
  if (response) {
    const result = (await response.json().catch(() => undefined)) as { redriven?: unknown } | undefined;
    if (!response.ok || typeof result?.redriven !== "number") {
      throw new Error(`the server on port ${config.PORT} did not redrive: ${response.status} ${JSON.stringify(result ?? null)}`);
    }
    process.stdout.write(`redriven ${result.redriven} event(s) through the running server\n`);
    return;
  }
  // No server running: queue them with fresh attempts (as an in-process redrive does), so each
  // gets the whole retry policy again; `npm run dev` delivers pending events at start.
  const dir = join(resolve(config.DATA_DIR, config.STAGE), "bus");
  const chosen = listDeliveries(join(dir, "dlq")).filter((d) => ids.length === 0 || ids.includes(d.id));
  mkdirSync(join(dir, "pending"), { recursive: true });
  for (const d of chosen) {
    const fresh: Delivery = { id: d.id, subscriber: d.subscriber, event: d.event, attempts: 0 };
    const target = join(dir, "pending", `${d.id}.json`);
    writeFileSync(`${target}.tmp`, JSON.stringify(fresh));
    renameSync(`${target}.tmp`, target);
    rmSync(join(dir, "dlq", `${d.id}.json`), { force: true });
  }
  process.stdout.write(`queued ${chosen.length} event(s); they are delivered when \`npm run dev\` starts\n`);
}

function dlqCommand() {
  const config = readLocalConfig();
  const dir = join(resolve(config.DATA_DIR, config.STAGE), "bus", "dlq");
  const items = existsSync(dir) ? listDeliveries(dir) : [];
  if (items.length === 0) process.stdout.write("no dead-lettered events\n");
  for (const d of items) {
    process.stdout.write(`${d.id}  ${d.event["detail-type"]}  → ${d.subscriber}  attempts=${d.attempts}  ${d.lastError ?? ""}\n`);
  }
}

function helpCommand() {
  process.stdout.write(`${usage}\n`);
}

const commands: Record<string, Command> = {
  dev: { run: dev },
  migrate: { run: migrateCommand, options: ["service", "tenant"] },
  generate: { run: generateCommand, options: ["service", "name"] },
  seed: { run: seedCommand, options: ["env", "service", "tenant"] },
  redrive: { run: redriveCommand, positional: true },
  dlq: { run: dlqCommand },
  help: { run: helpCommand },
};

/**
 * The stacks under a failure, for LOG_LEVEL=debug: the error's and its causes'. A failed query's
 * own stack is left out: its message embeds the query's parameters.
 */
function stacksOf(error: unknown): string {
  const stacks: string[] = [];
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (!("query" in current && "params" in current)) stacks.push(redactSecrets(current.stack ?? `${current.name}: ${current.message}`));
    current = current.cause;
  }
  return stacks.join("\ncaused by: ");
}

/** An error's message without query parameters or credentials. */
function messageOf(error: unknown): string {
  const described = describeError(error);
  return String(described.message ?? described.error);
}

/** What a person running the command reads: plain lines and no stack (unless LOG_LEVEL=debug). */
function report(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n\n${usage}\n`);
    return 2;
  }
  const lines =
    error instanceof StartupError ? error.problems : error instanceof ConfigError ? configProblems(error) : [`${command} failed: ${messageOf(error)}`];
  process.stderr.write(`${lines.join("\n")}\n`);
  if (process.env.LOG_LEVEL === "debug") process.stderr.write(`${stacksOf(error)}\n`);
  return 1;
}

const chosen = ["--help", "-h"].includes(command) ? commands.help : commands[command];
Promise.resolve()
  .then(() => {
    if (!chosen) throw new UsageError(`unknown command "${command}" (one of: ${Object.keys(commands).join(", ")})`);
    // With --stage, the dead letters are a deployed stage's SQS queues, not the local bus's.
    if ((command === "dlq" || command === "redrive") && args.some((arg) => arg === "--stage" || arg.startsWith("--stage="))) {
      return import("@enclave/stage/ops/cli").then(async ({ deadLettersCommand }) => {
        process.exitCode = await deadLettersCommand(command, args);
      });
    }
    parseArguments(chosen);
    return chosen.run();
  })
  .catch((error) => {
    process.exitCode = report(error);
    // Whatever start-up left open (a database pool, a listening socket) must not keep a failed
    // command running.
    process.exit();
  });
