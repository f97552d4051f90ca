import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type AppEnv,
  AppError,
  ConfigError,
  type Database,
  describeError,
  eventHandler,
  finalizeApp,
  log,
  openDatabase,
  parseCommonConfig,
  rateSeconds,
  requestContext,
  type ServiceContext,
} from "@enclave/core";
import { databaseUrlProblem, describeDatabaseFailure, fileProblem } from "@enclave/core/db/failures";
import { MigrationError, migrate } from "@enclave/core/db/migrate";
import { generatePrivateJwk, type PrivateJwk, parsePrivateJwk, parseSigningKeys, publicJwksJson } from "@enclave/core/keys";
import { gatewayPath } from "@enclave/core/lambda-http";
import { tenantContext } from "@enclave/core/tenants";
import { Hono } from "hono";
import { getPath } from "hono/utils/url";
import { LocalBus } from "./bus";
import { type LocalConfig, readLocalConfig } from "./config";
import { mountDocs } from "./docs";
import { mountEventsPage } from "./events-page";
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
  /**
   * The tenant this runtime serves (a cell of the tenants runtime): its tokens carry the tenant,
   * its verifiers accept no other, and its state (bus, default PGlite) is under `tenants/<id>`.
   */
  tenant?: string;
}

/**
 * A start-up failure said so that it can be printed as it is: one line per problem, each naming
 * the service and the variable to fix, never a secret. The original error is its cause (for
 * LOG_LEVEL=debug).
 */
export class StartupError extends Error {
  constructor(
    readonly problems: string[],
    options?: { cause?: unknown },
  ) {
    super(problems.join("\n"), options);
    this.name = "StartupError";
  }
}

/** A ConfigError's problems as printed lines, each prefixed with the service when it is known. */
export function configProblems(error: ConfigError, service = error.service): string[] {
  return error.problems.map((problem) => (!service || problem.startsWith(`${service}: `) ? problem : `${service}: ${problem}`));
}

/** `a, b: problem` for problems several services share (one DATABASE_URL, one LOG_LEVEL). */
function grouped(problems: { service: string; problem: string }[]): string[] {
  const byProblem = new Map<string, string[]>();
  for (const { service, problem } of problems) byProblem.set(problem, [...(byProblem.get(problem) ?? []), service]);
  return [...byProblem].map(([problem, services]) => `${services.join(", ")}: ${problem}`);
}

function signingKeySet(json: string) {
  try {
    return parseSigningKeys("AUTH_SIGNING_KEY", json);
  } catch (error) {
    throw new StartupError([`auth: ${(error as Error).message}`], { cause: error });
  }
}

/** The key in `variable`, else `stageDir/<name>.json`, generated once: restarts keep signed tokens valid. */
function loadOrCreateKey(variable: string, fromEnv: string | undefined, file: string): PrivateJwk {
  if (fromEnv) return parsePrivateJwk(variable, fromEnv);
  if (existsSync(file)) return parsePrivateJwk(file, readFileSync(file, "utf8"));
  const jwk = generatePrivateJwk();
  writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

/** A tenant's local state (its bus, its default PGlite databases) under the stage's directory. */
export const tenantStateDir = (stageDir: string, tenant: string) => join(stageDir, "tenants", tenant);

/** Where a service's database is, and the variable that put it there (for messages). */
export interface DatabaseLocation {
  url: string;
  /** `<SERVICE>_DATABASE_URL`, `DATABASE_URL`, or `DATA_DIR` for the default PGlite directory. */
  variable: string;
}

export function databaseLocation(service: string, env: Record<string, string | undefined>, stageDir: string): DatabaseLocation {
  const own = `${service.toUpperCase()}_DATABASE_URL`;
  if (env[own]) return { url: env[own], variable: own };
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, variable: "DATABASE_URL" };
  return { url: `pglite://${join(stageDir, service)}`, variable: "DATA_DIR" };
}

/** The databases of several services, one per distinct URL, each checked to answer. */
export interface OpenedDatabases {
  byService: Map<string, Database>;
  close(): Promise<void>;
}

/** The services of each distinct URL. */
function byUrl(locations: Map<string, DatabaseLocation>): { location: DatabaseLocation; services: string[] }[] {
  const groups = new Map<string, { location: DatabaseLocation; services: string[] }>();
  for (const [service, location] of locations) {
    const group = groups.get(location.url) ?? { location, services: [] };
    group.services.push(service);
    groups.set(location.url, group);
  }
  return [...groups.values()];
}

/** Stops start-up on a database URL that cannot be opened at all, before anything is read or opened. */
export function checkDatabaseUrls(locations: Map<string, DatabaseLocation>): void {
  const invalid = byUrl(locations).flatMap(({ location, services }) => {
    const problem = databaseUrlProblem(location.variable, location.url);
    return problem ? [`${services.join(", ")}: ${problem}`] : [];
  });
  if (invalid.length > 0) throw new StartupError(invalid);
}

/**
 * Opens each service's database (services sharing a URL share one: PGlite is single-connection)
 * and checks that it answers, before anything is migrated. Every database that cannot be opened
 * is reported at once, as `<services>: <VARIABLE>: <why>`.
 */
export async function openServiceDatabases(
  locations: Map<string, DatabaseLocation>,
  maxConnections: number,
  queryTimeoutMs?: number,
): Promise<OpenedDatabases> {
  checkDatabaseUrls(locations);
  const groups = byUrl(locations);
  const settled = await Promise.allSettled(
    groups.map(async ({ location }) => {
      const database = await openDatabase(location.url, { maxConnections, ...(queryTimeoutMs ? { queryTimeoutMs } : {}) });
      try {
        await database.ping();
      } catch (error) {
        await database.close().catch(() => {});
        throw error;
      }
      return database;
    }),
  );
  const opened = settled.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const close = async () => {
    await Promise.all(opened.map((database) => database.close()));
  };
  const failures = settled.flatMap((result, index) => (result.status === "rejected" ? [{ group: groups[index]!, error: result.reason as unknown }] : []));
  if (failures.length > 0) {
    await close().catch(() => {});
    const problems = failures.map(({ group: { location, services }, error }) => {
      const why = describeDatabaseFailure(location.variable, location.url, error) ?? `${location.variable}: cannot open the database: ${messageOf(error)}`;
      return `${services.join(", ")}: ${why}`;
    });
    throw new StartupError(problems, { cause: failures[0]!.error });
  }
  const byService = new Map<string, Database>();
  groups.forEach(({ services }, index) => {
    for (const service of services) byService.set(service, opened[index]!);
  });
  return { byService, close };
}

/** Applies a service's pending migrations; a failure says which service and what to fix. */
export async function migrateService(service: string, database: Database, location: DatabaseLocation): Promise<string[]> {
  try {
    const { applied } = await migrate(database.db, service, join(repositoryRoot, "migrations", service));
    return applied;
  } catch (error) {
    if (error instanceof MigrationError) throw new StartupError([`${service}: migrations: ${error.message.replace(`[${service}] `, "")}`], { cause: error });
    const why = describeDatabaseFailure(location.variable, location.url, error) ?? `migrating failed: ${messageOf(error)}`;
    throw new StartupError([`${service}: ${why}`], { cause: error });
  }
}

/** An error's message without query parameters or credentials. */
function messageOf(error: unknown): string {
  const described = describeError(error);
  return String(described.message ?? described.error);
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
  // The stage's keys stay in stageDir, shared by every tenant; events and PGlite data do not.
  const stateDir = options.tenant ? tenantStateDir(stageDir, options.tenant) : stageDir;
  const locations = new Map(services.map(({ module }) => [module.manifest.name, databaseLocation(module.manifest.name, env, stateDir)]));
  checkDatabaseUrls(locations);
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (error) {
    throw new StartupError([`DATA_DIR: cannot create ${join(config.DATA_DIR, config.STAGE)} (${fileProblem(error) ?? messageOf(error)})`], { cause: error });
  }

  // The stage's two keys, as a deployed stage has them: every service gets the public halves.
  const key = (variable: string, file: string, owner?: string) => {
    try {
      return loadOrCreateKey(variable, env[variable], join(stageDir, file));
    } catch (error) {
      throw new StartupError([`${owner ? `${owner}: ` : ""}${(error as Error).message}`], { cause: error });
    }
  };
  // While the key is rotated AUTH_SIGNING_KEY is a key set: every key in it is published.
  const authKeys = env.AUTH_SIGNING_KEY?.includes('"keys"') ? signingKeySet(env.AUTH_SIGNING_KEY) : undefined;
  const signingJwk = authKeys?.signer ?? key("AUTH_SIGNING_KEY", "auth-signing-key.json", "auth");
  // The stage's, not one service's: every service signs its calls with it.
  const serviceSigningJwk = key("SERVICE_SIGNING_KEY", "service-signing-key.json");
  env.AUTH_SIGNING_KEY = authKeys ? env.AUTH_SIGNING_KEY : JSON.stringify(signingJwk);
  env.AUTH_PUBLIC_JWKS = publicJwksJson(...(authKeys?.keys ?? [signingJwk]));
  env.SERVICE_SIGNING_KEY = JSON.stringify(serviceSigningJwk);
  env.SERVICE_PUBLIC_JWKS = publicJwksJson(serviceSigningJwk);
  env.STAGE = config.STAGE;

  // Where each service's configuration looks for its database, the default PGlite included.
  for (const [name, { url }] of locations) env[`${name.toUpperCase()}_DATABASE_URL`] = url;

  const bus = new LocalBus({ dir: join(stateDir, "bus"), maxAttempts: config.BUS_MAX_ATTEMPTS, baseDelayMs: config.BUS_RETRY_BASE_MS });
  const app = new Hono<AppEnv>({ getPath: deployedPath });
  app.use(requestContext("*"));
  const fetchLocal = async (request: Request) => app.fetch(request);

  // Every service's configuration is read before any database is opened: a mistyped variable
  // stops start-up at once, with every service's problems together, and nothing migrated.
  const databases = new Map<string, Database>();
  const contexts = new Map<string, ServiceContext>();
  const configFailures: { service: string; problem: string }[] = [];
  let firstConfigError: ConfigError | undefined;
  for (const service of services) {
    const name = service.module.manifest.name;
    const database = async () => {
      const open = databases.get(name);
      if (!open) throw new Error(`the ${name} database is not open yet`);
      return open;
    };
    // Each service verifies tokens as deployed, from the same variables (core's verifierFromConfig).
    const local: LocalContextBase = { env, overrides: { database, bus }, fetch: fetchLocal };
    try {
      const context = await service.context(local);
      contexts.set(name, options.tenant ? tenantContext(context, parseCommonConfig(name, env), options.tenant) : context);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      firstConfigError ??= error;
      for (const problem of error.problems)
        configFailures.push({ service: name, problem: problem.startsWith(`${name}: `) ? problem.slice(name.length + 2) : problem });
    }
  }
  if (configFailures.length > 0) throw new StartupError(grouped(configFailures), { cause: firstConfigError });

  const opened = await openServiceDatabases(locations, 5, config.DB_QUERY_TIMEOUT_MS);
  try {
    for (const [name, database] of opened.byService) databases.set(name, database);
    for (const [name, location] of locations) {
      const applied = await migrateService(name, databases.get(name) as Database, location);
      if (applied.length > 0) log("info", "migrations applied", { service: name, applied });
    }
  } catch (error) {
    await opened.close().catch(() => {});
    throw error;
  }

  for (const service of services) {
    const name = service.module.manifest.name;
    const context = contexts.get(name) as ServiceContext;
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
  mountEventsPage(app, bus);
  app.get("/_local/events/dlq", (c) => c.json({ items: bus.deadLetters() }));
  app.post("/_local/events/redrive", async (c) => {
    // No body or `{}` redrives every dead letter; `{"ids": [...]}` only those. Anything else is
    // refused rather than read as "all". Only JSON is taken: a page on another site can post a
    // form or plain text here, but not application/json without the browser asking first.
    if (!/^application\/json\s*(;|$)/i.test(c.req.header("content-type") ?? "")) throw new AppError("unsupported_media_type");
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
      await opened.close();
    },
  };
}

/**
 * Routes a request on the path its deployed function would route on (core's gatewayPath), so a
 * path with escapes gets the same answer here as deployed. Most paths have none and are left alone.
 */
function deployedPath(request: Request): string {
  const url = request.url;
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (!url.includes("%", start)) return getPath(request);
  const end = url.slice(start).search(/[?#]/);
  const path = end === -1 ? url.slice(start) : url.slice(start, start + end);
  return getPath({ url: `http://local${gatewayPath(path)}` } as Request);
}
