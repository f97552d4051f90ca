import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type AppEnv,
  AppError,
  type Database,
  describeError,
  eventHandler,
  finalizeApp,
  log,
  openDatabase,
  rateSeconds,
  requestContext,
  type ServiceContext,
} from "@enclave/core";
import { migrate } from "@enclave/core/db/migrate";
import { generatePrivateJwk, type PrivateJwk, parsePrivateJwk, publicJwksJson } from "@enclave/core/keys";
import { Hono } from "hono";
import { LocalBus } from "./bus";
import { type LocalConfig, readLocalConfig } from "./config";
import { mountDocs } from "./docs";
import type { LocalContextBase, LocalService } from "./registry";
import { localServices } from "./services";

export const repositoryRoot = resolve(import.meta.dirname, "../../..");

export interface LocalRuntime {
  config: LocalConfig;
  app: Hono<AppEnv>;
  bus: LocalBus;
  /** Each service's context, by service name. */
  contexts: Map<string, ServiceContext>;
  databases: Map<string, Database>;
  /** Runs a service's cron once (what the timers do). */
  runCron(service: string, name: string): Promise<unknown>;
  stageDir: string;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  services?: LocalService[];
}

/** The key in `variable`, else `stageDir/<name>.json`, generated once: restarts keep signed tokens valid. */
function loadOrCreateKey(variable: string, fromEnv: string | undefined, file: string): PrivateJwk {
  if (fromEnv) return parsePrivateJwk(variable, fromEnv);
  if (existsSync(file)) return parsePrivateJwk(file, readFileSync(file, "utf8"));
  const jwk = generatePrivateJwk();
  writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

/**
 * Builds the whole system in one process: a database per service (PGlite under DATA_DIR unless a
 * URL is configured), migrations, the local bus with every manifest subscription, crons on
 * timers, seeds, and one Hono app serving every service at its API Gateway prefix.
 */
export async function createLocalRuntime(options: StartOptions = {}): Promise<LocalRuntime> {
  const env = { ...(options.env ?? process.env) };
  const config = readLocalConfig(env);
  const services = options.services ?? localServices;
  const stageDir = resolve(config.DATA_DIR, config.STAGE);
  mkdirSync(stageDir, { recursive: true });

  // The stage's two keys, as a deployed stage has them: every service gets the public halves.
  const signingJwk = loadOrCreateKey("AUTH_SIGNING_KEY", env.AUTH_SIGNING_KEY, join(stageDir, "auth-signing-key.json"));
  const serviceSigningJwk = loadOrCreateKey("SERVICE_SIGNING_KEY", env.SERVICE_SIGNING_KEY, join(stageDir, "service-signing-key.json"));
  env.AUTH_SIGNING_KEY = JSON.stringify(signingJwk);
  env.AUTH_PUBLIC_JWKS = publicJwksJson(signingJwk);
  env.SERVICE_SIGNING_KEY = JSON.stringify(serviceSigningJwk);
  env.SERVICE_PUBLIC_JWKS = publicJwksJson(serviceSigningJwk);
  env.STAGE = config.STAGE;

  // One database per distinct URL: services sharing DATABASE_URL share one PGlite instance
  // (PGlite is single-connection), each in its own schema.
  const byUrl = new Map<string, Promise<Database>>();
  const databases = new Map<string, Database>();
  await Promise.all(
    services.map(async ({ module }) => {
      const name = module.manifest.name;
      const url = env[`${name.toUpperCase()}_DATABASE_URL`] || env.DATABASE_URL || `pglite://${join(stageDir, name)}`;
      env[`${name.toUpperCase()}_DATABASE_URL`] = url;
      if (!byUrl.has(url)) byUrl.set(url, openDatabase(url, { maxConnections: 5 }));
      databases.set(name, (await byUrl.get(url)) as Database);
    }),
  );
  for (const { module } of services) {
    const name = module.manifest.name;
    const { applied } = await migrate((databases.get(name) as Database).db, name, join(repositoryRoot, "migrations", name));
    if (applied.length > 0) log("info", "migrations applied", { service: name, applied });
  }

  const bus = new LocalBus({ dir: join(stageDir, "bus"), maxAttempts: config.BUS_MAX_ATTEMPTS, baseDelayMs: config.BUS_RETRY_BASE_MS });
  const app = new Hono<AppEnv>();
  app.use(requestContext("*"));
  const fetchLocal = async (request: Request) => app.fetch(request);

  const contexts = new Map<string, ServiceContext>();
  for (const service of services) {
    const name = service.module.manifest.name;
    const database = databases.get(name) as Database;
    // Each service verifies tokens as deployed, from the same variables (core's verifierFromConfig).
    const local: LocalContextBase = { env, overrides: { database: async () => database, bus }, fetch: fetchLocal };
    const context = await service.context(local);
    contexts.set(name, context);
    app.route("/", service.module.createApp(context));
    for (const [job, declared] of Object.entries(service.module.jobs)) {
      if (declared.kind === "subscription") bus.subscribe({ name: `${name}.${job}`, pattern: declared.pattern, handler: eventHandler(job, declared, context) });
    }
  }
  mountDocs(
    app as unknown as Hono,
    services.map((s) => s.module.manifest),
  );
  app.get("/", (c) => c.json({ services: services.map((s) => ({ name: s.module.manifest.name, prefix: s.module.manifest.prefix })), docs: "/docs" }));
  app.get("/_local/events/dlq", (c) => c.json({ items: bus.deadLetters() }));
  app.post("/_local/events/redrive", async (c) => {
    // No body or `{}` redrives every dead letter; `{"ids": [...]}` only those. Anything else is
    // refused rather than read as "all".
    const text = await c.req.text();
    let body: unknown = {};
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        throw new AppError("malformed_json");
      }
    }
    const ids = (body as { ids?: unknown } | null)?.ids;
    const valid =
      body !== null &&
      typeof body === "object" &&
      !Array.isArray(body) &&
      (ids === undefined || (Array.isArray(ids) && ids.every((id) => typeof id === "string")));
    if (!valid) throw new AppError("validation_failed", 'Send {} to redrive every dead letter, or {"ids": ["<delivery id>", ...]}.');
    return c.json({ redriven: bus.redrive(ids as string[] | undefined) });
  });
  finalizeApp(app);

  const runCron = async (service: string, name: string) => {
    const job = services.find((s) => s.module.manifest.name === service)?.module.jobs[name];
    if (job?.kind !== "cron") throw new Error(`no cron ${service}.${name}`);
    return job.run(contexts.get(service) as ServiceContext);
  };

  // Seeds: essential everywhere, development unless SEED=none. Subscribers are registered
  // first, so seeded users get their profiles like any other user.
  for (const service of services) {
    const context = contexts.get(service.module.manifest.name) as ServiceContext;
    await service.module.seeds.essential?.(context, { adminPassword: config.SEED_ADMIN_PASSWORD });
    if (config.SEED === "development") await service.module.seeds.development?.(context, { adminPassword: config.SEED_ADMIN_PASSWORD });
  }
  const recovered = bus.recover();
  if (recovered > 0) log("info", "redelivering events left pending by the last run", { count: recovered });

  const timers: NodeJS.Timeout[] = [];
  const running = new Set<string>();
  if (config.LOCAL_CRONS === "1") {
    for (const service of services) {
      for (const [job, cron] of Object.entries(service.module.jobs)) {
        if (cron.kind !== "cron") continue;
        const key = `${service.module.manifest.name}.${job}`;
        const tick = async () => {
          if (running.has(key)) return; // a slow run is never overlapped by the next tick
          running.add(key);
          try {
            await runCron(service.module.manifest.name, job);
          } catch (error) {
            log("error", "cron failed", { cron: key, ...describeError(error) });
          } finally {
            running.delete(key);
          }
        };
        timers.push(setInterval(tick, rateSeconds(cron.schedule) * 1000));
        // Catch up at start: a sweeper picks up what a crash left in the outbox.
        void tick();
      }
    }
  }

  return {
    config,
    app,
    bus,
    contexts,
    databases,
    runCron,
    stageDir,
    async close() {
      for (const timer of timers) clearInterval(timer);
      await bus.close();
      while (running.size > 0) await new Promise((r) => setTimeout(r, 20));
      await Promise.all([...byUrl.values()].map(async (db) => (await db).close()));
    },
  };
}
