import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseEnv } from "@enclave/core/config";
import { type Database, openDatabase, rowsOf } from "@enclave/core/db/index";
import { readMigrations } from "@enclave/core/db/migrate";
import { applyGrants, ensureDatabase, ensureRoles, migrateAsOwner, type ServiceRoles, serviceRoles, type Topology, topologies } from "@enclave/core/db/roles";
import { log } from "@enclave/core/log";
import { sql } from "drizzle-orm";
import * as z from "zod/mini";

/**
 * The migrate function: invoked once per deploy of a stage (and only then). As the branch's
 * administrator it creates each service's owner and runtime roles, creates the service
 * databases the topology needs, applies each service's pending migrations as the service's
 * owner, and grants the runtime role DML on its own schema. Any failure throws, which fails the
 * invocation and with it the deploy.
 */

export interface MigrateStageOptions {
  /** A role that can create roles and databases (Neon: the branch's default owner), on any database of the branch. */
  adminUrl: string;
  topology: Topology;
  /** `single` topology: the shared database. */
  database?: string;
  services: { name: string; runtimePassword: string }[];
  /** Folder holding `<service>/meta/_journal.json` and the SQL files. */
  migrationsDir: string;
  /** Role (and per-service database) name prefix: tests on a shared server. */
  rolePrefix?: string;
  /** A local WebSocket-to-TCP proxy for the Neon driver: tests only. */
  neonWsProxy?: string;
}

export interface MigrateStageResult {
  /** Changes exactly when some service's migrations change: a digest of every journal entry and file hash. */
  schema: string;
  services: { service: string; database: string; applied: string[] }[];
}

/** The admin URL pointed at another database of the same server. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function migrateStage(options: MigrateStageOptions): Promise<MigrateStageResult> {
  const plans = options.services.map((s) => ({
    roles: serviceRoles(s.name, {
      topology: options.topology,
      ...(options.database ? { database: options.database } : {}),
      ...(options.rolePrefix ? { prefix: options.rolePrefix } : {}),
    }),
    runtimePassword: s.runtimePassword,
  }));
  // Read every service's files first: a broken journal stops the deploy before anything changes.
  const files = await Promise.all(plans.map(({ roles }) => readMigrations(roles.service, join(options.migrationsDir, roles.service))));
  const schema = createHash("sha256")
    .update(JSON.stringify(files.map((list, i) => [plans[i]?.roles.service, list.map((f) => [f.tag, f.hash])])))
    .digest("hex")
    .slice(0, 16);

  const connection = { maxConnections: 1, ...(options.neonWsProxy ? { neonWsProxy: options.neonWsProxy } : {}) };
  const admin = await openDatabase(options.adminUrl, connection);
  const opened = new Map<string, Database>();
  try {
    const adminDatabase = rowsOf<{ name: string }>(await admin.db.execute(sql`select current_database() as name`))[0]?.name;
    await ensureRoles(admin.db, plans);
    const databaseOf = async (roles: ServiceRoles): Promise<Database> => {
      if (roles.database === adminDatabase) return admin;
      const existing = opened.get(roles.database);
      if (existing) return existing;
      const created = await ensureDatabase(admin.db, roles.database, options.topology === "per-service" ? roles.owner : undefined);
      if (created) log("info", "database created", { database: roles.database });
      const database = await openDatabase(databaseUrl(options.adminUrl, roles.database), connection);
      opened.set(roles.database, database);
      return database;
    };
    const results: MigrateStageResult["services"] = [];
    for (const { roles } of plans) {
      const database = await databaseOf(roles);
      // The owner needs CREATE on a shared database before it can create its schema.
      if (options.topology === "single") await applyGrants(database.db, roles, options.topology);
      const { applied } = await migrateAsOwner(database.db, roles, join(options.migrationsDir, roles.service));
      await applyGrants(database.db, roles, options.topology);
      log("info", "service migrated", { service: roles.service, database: roles.database, applied });
      results.push({ service: roles.service, database: roles.database, applied });
    }
    return { schema, services: results };
  } finally {
    await Promise.allSettled([...opened.values()].map((d) => d.close()));
    await admin.close();
  }
}

const migrateEnv = z.object({
  MIGRATE_ADMIN_URL: z.string().check(z.minLength(1)),
  MIGRATE_TOPOLOGY: z._default(z.enum(topologies as [Topology, ...Topology[]]), "per-service"),
  MIGRATE_DATABASE: z.optional(z.string().check(z.minLength(1))),
  /** Comma-separated service names, in migration order. */
  MIGRATE_SERVICES: z.string().check(z.regex(/^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$/)),
  MIGRATIONS_DIR: z.optional(z.string()),
  LAMBDA_TASK_ROOT: z.optional(z.string()),
  /** Tests only: namespace roles and databases on a shared server, reach it through a local proxy. */
  MIGRATE_ROLE_PREFIX: z.optional(z.string().check(z.regex(/^[a-z][a-z0-9_]{0,20}$/))),
  NEON_WS_PROXY: z.optional(z.string()),
});

/** Options from the function's environment: `<SERVICE>_RUNTIME_PASSWORD` per service. */
export function migrateOptionsFromEnv(env: Record<string, string | undefined>): MigrateStageOptions {
  const config = parseEnv(migrateEnv, env);
  const services = config.MIGRATE_SERVICES.split(",").map((name) => {
    const runtimePassword = env[`${name.toUpperCase()}_RUNTIME_PASSWORD`];
    if (!runtimePassword) throw new Error(`Invalid configuration:\n  - ${name.toUpperCase()}_RUNTIME_PASSWORD is required`);
    return { name, runtimePassword };
  });
  return {
    adminUrl: config.MIGRATE_ADMIN_URL,
    topology: config.MIGRATE_TOPOLOGY,
    ...(config.MIGRATE_DATABASE ? { database: config.MIGRATE_DATABASE } : {}),
    services,
    // The deployment copies migrations/ into the function package root.
    migrationsDir: config.MIGRATIONS_DIR ?? join(config.LAMBDA_TASK_ROOT ?? process.cwd(), "migrations"),
    ...(config.MIGRATE_ROLE_PREFIX ? { rolePrefix: config.MIGRATE_ROLE_PREFIX } : {}),
    ...(config.NEON_WS_PROXY ? { neonWsProxy: config.NEON_WS_PROXY } : {}),
  };
}

export const handler = async (): Promise<MigrateStageResult> => {
  const started = performance.now();
  try {
    const result = await migrateStage(migrateOptionsFromEnv(process.env));
    log("info", "stage migrated", { schema: result.schema, ms: Math.round(performance.now() - started) });
    return result;
  } catch (error) {
    log("error", "stage migration failed", { error: (error as Error).message });
    throw error;
  }
};
