import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, describeError, log, openDatabase } from "@enclave/core";
import { migrate } from "@enclave/core/db/migrate";
import { serve } from "@hono/node-server";
import { type Delivery, listDeliveries } from "./bus";
import { readLocalConfig } from "./config";
import { createLocalRuntime, repositoryRoot } from "./runtime";
import { localServices } from "./services";

const [command = "dev", ...args] = process.argv.slice(2);
const option = (name: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
};

function chosenServices() {
  const only = option("service");
  const chosen = localServices.filter((s) => !only || s.module.manifest.name === only);
  if (only && chosen.length === 0) throw new Error(`unknown service "${only}" (known: ${localServices.map((s) => s.module.manifest.name).join(", ")})`);
  return chosen;
}

async function dev() {
  const started = performance.now();
  const runtime = await createLocalRuntime();
  const { PORT, HOST } = runtime.config;
  const server = serve({ fetch: runtime.app.fetch, port: PORT, hostname: HOST });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : PORT;
  const base = `http://${HOST === "0.0.0.0" ? "localhost" : HOST}:${port}`;
  const readyMs = Math.round(performance.now() - started);
  process.stdout.write(
    [
      "",
      `Enclave is running (stage ${runtime.config.STAGE}, data in ${runtime.stageDir}), ready in ${readyMs} ms`,
      ...localServices.map((s) => `  ${s.module.manifest.name.padEnd(9)} ${base}${s.module.manifest.prefix}`),
      `  docs      ${base}/docs`,
      `  events    ${base}/_local/events/dlq (dead letters)`,
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
  for (const { module } of chosenServices()) {
    const name = module.manifest.name;
    const url = process.env[`${name.toUpperCase()}_DATABASE_URL`] || process.env.DATABASE_URL || `pglite://${join(stageDir, name)}`;
    const database = await openDatabase(url, { maxConnections: 1 });
    try {
      const { applied } = await migrate(database.db, name, join(repositoryRoot, "migrations", name));
      process.stdout.write(`${name}: ${applied.length === 0 ? "up to date" : `applied ${applied.join(", ")}`}\n`);
    } finally {
      await database.close();
    }
  }
}

function generateCommand() {
  const name = option("service");
  if (!name) throw new Error("usage: npm run db:generate -- --service <name> [--name <migration name>]");
  chosenServices();
  const extra = option("name") ? ["--name", option("name") as string] : [];
  const result = spawnSync("drizzle-kit", ["generate", "--config", `packages/${name}/drizzle.config.ts`, ...extra], { stdio: "inherit", cwd: repositoryRoot });
  process.exitCode = result.status ?? 1;
}

async function seedCommand() {
  const runtime = await createLocalRuntime({ env: { ...process.env, LOCAL_CRONS: "0" } });
  await runtime.bus.drain();
  await runtime.close();
  process.stdout.write("seeded\n");
}

async function redriveCommand() {
  const config = readLocalConfig();
  const ids = args.filter((a) => !a.startsWith("--"));
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

const commands: Record<string, () => unknown> = {
  dev,
  migrate: migrateCommand,
  generate: generateCommand,
  seed: seedCommand,
  redrive: redriveCommand,
  dlq: dlqCommand,
};

const run = commands[command];
if (!run) {
  process.stderr.write(`unknown command ${command}; one of: ${Object.keys(commands).join(", ")}\n`);
  process.exit(2);
}
Promise.resolve()
  .then(run)
  .catch((error) => {
    if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
    else process.stderr.write(`${command} failed: ${JSON.stringify(describeError(error))}\n`);
    process.exit(1);
  });
