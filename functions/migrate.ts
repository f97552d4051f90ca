import { createHash } from "node:crypto";
import { join } from "node:path";
import { readAdminConfig } from "@enclave/admin/config";
import { adminContextFromConfig } from "@enclave/admin/context";
import { adminSeeds } from "@enclave/admin/seed";
import { readAuthConfig } from "@enclave/auth/config";
import { authContextFromConfig } from "@enclave/auth/context";
import { authSeeds } from "@enclave/auth/seed";
import type { SeedSet, Seeds, ServiceContext } from "@enclave/core";
import { ConfigError, parseEnv, stageSchema, withSealedSettings } from "@enclave/core/config";
import { type Database, openDatabase, rowsOf } from "@enclave/core/db/index";
import { readMigrations } from "@enclave/core/db/migrate";
import { applyGrants, ensureDatabase, ensureRoles, migrateAsOwner, type ServiceRoles, serviceRoles, type Topology, topologies } from "@enclave/core/db/roles";
import type { EventBus } from "@enclave/core/events/bus";
import { generatePrivateJwk } from "@enclave/core/keys";
import { log } from "@enclave/core/log";
import { markStage, productionRefusal, readStageMarkers, seedSets } from "@enclave/core/seed";
import { readPaymentsConfig } from "@enclave/payments/config";
import { paymentsContextFromConfig } from "@enclave/payments/context";
import { paymentsSeeds } from "@enclave/payments/seed";
import { readProfileConfig } from "@enclave/profile/config";
import { profileContextFromConfig } from "@enclave/profile/context";
import { profileSeeds } from "@enclave/profile/seed";
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
  /** Seed sets to apply after migrating, as each service's runtime role. */
  seeds?: SeedSet[];
  /**
   * The stage: its name marks every database it migrates (the `enclave stage: <stage>` comment,
   * written once), and `production` refuses the development and staging sets.
   */
  stage?: string;
  /** The development administrator's password (SEED_ADMIN_PASSWORD). */
  seedAdminPassword?: string;
  /** The staging set's accounts' password (STAGING_SEED_PASSWORD). */
  stagingSeedPassword?: string;
}

export interface MigrateStageResult {
  /** Changes exactly when some service's migrations change: a digest of every journal entry and file hash. */
  schema: string;
  services: { service: string; database: string; applied: string[]; seeded: SeedSet[] }[];
}

/**
 * How the migrate function builds a service's context to run its seeds: the service's own
 * config parser over the variables a seed needs. It loads the seeds and contexts only, never a
 * service's HTTP routes. Seeds never sign tokens nor call another service (seeded people have
 * fixed ids), so the keys are throwaway ones; the database URL is the service's runtime role.
 */
const seedContexts: Record<string, { seeds: Seeds<never>; context(env: Record<string, string>, bus: EventBus): ServiceContext }> = {
  auth: { seeds: authSeeds as Seeds<never>, context: (env, bus) => authContextFromConfig(readAuthConfig(env), { bus }) },
  admin: { seeds: adminSeeds as Seeds<never>, context: (env, bus) => adminContextFromConfig(readAdminConfig(env), { bus }) },
  profile: { seeds: profileSeeds as Seeds<never>, context: (env, bus) => profileContextFromConfig(readProfileConfig(env), { bus }) },
  payments: { seeds: paymentsSeeds as Seeds<never>, context: (env, bus) => paymentsContextFromConfig(readPaymentsConfig(env), { bus }) },
};

const outboxOnly: EventBus = {
  async publish(entries) {
    return { failed: entries.map((entry) => ({ id: entry.detail.id, error: "seed events are published by the outbox sweeper after the deploy" })) };
  },
};

/** The URL a service's runtime role connects with, on the admin URL's server. */
export function runtimeUrl(adminUrl: string, roles: ServiceRoles, password: string): string {
  const url = new URL(databaseUrl(adminUrl, roles.database));
  url.username = roles.runtime;
  url.password = password;
  return url.toString();
}

async function seedService(options: MigrateStageOptions, roles: ServiceRoles, runtimePassword: string): Promise<SeedSet[]> {
  const seeder = seedContexts[roles.service];
  const sets = (options.seeds ?? []).filter((set) => seeder?.seeds[set]);
  if (!seeder || sets.length === 0) return [];
  const key = JSON.stringify(generatePrivateJwk());
  // The deploy runs this before it creates the stage's bus rules (they target functions that
  // wait for this migration), so seed events stay in the outbox and the sweeper publishes them.
  const context = seeder.context(
    {
      STAGE: options.stage ?? "local",
      LOG_LEVEL: "warn",
      [`${roles.service.toUpperCase()}_DATABASE_URL`]: runtimeUrl(options.adminUrl, roles, runtimePassword),
      DB_MAX_CONNECTIONS: "1",
      ...(options.neonWsProxy ? { NEON_WS_PROXY: options.neonWsProxy } : {}),
      AUTH_SIGNING_KEY: key,
      SERVICE_SIGNING_KEY: key,
    },
    outboxOnly,
  );
  try {
    const seedOptions = { adminPassword: options.seedAdminPassword ?? "enclave-admin-dev", stagingPassword: options.stagingSeedPassword };
    for (const set of sets) await seeder.seeds[set]!(context as never, seedOptions);
  } finally {
    await (await context.database()).close();
  }
  return sets;
}

/** The admin URL pointed at another database of the same server. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function migrateStage(options: MigrateStageOptions): Promise<MigrateStageResult> {
  const byStage = productionRefusal(options.seeds ?? [], { stage: options.stage, where: "the stage" });
  if (byStage) throw new Error(`migrate: ${byStage}`);
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
    // Before anything is written: a database that holds production data refuses demo data and
    // accounts, whatever this stage is called (a branch of production keeps its marker).
    const markers = await readStageMarkers(admin.db, [...new Set(plans.map((p) => p.roles.database))]);
    for (const [database, marker] of markers) {
      const refusal = productionRefusal(options.seeds ?? [], { marker, where: `database ${database}` });
      if (refusal) throw new Error(`migrate: ${refusal}`);
    }
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
    const marked = new Set<string>();
    for (const { roles, runtimePassword } of plans) {
      const database = await databaseOf(roles);
      // The owner needs CREATE on a shared database before it can create its schema.
      if (options.topology === "single") await applyGrants(database.db, roles, options.topology);
      const { applied } = await migrateAsOwner(database.db, roles, join(options.migrationsDir, roles.service));
      await applyGrants(database.db, roles, options.topology);
      if (options.stage && !marked.has(roles.database)) {
        // Only the database's owner may comment on it: the service's owner, or (one shared database) the administrator.
        if (options.topology === "per-service") {
          await database.db.transaction(async (tx) => {
            await tx.execute(sql.raw(`set local role "${roles.owner.replaceAll('"', '""')}"`));
            await markStage(tx, options.stage as string);
          });
        } else await markStage(database.db, options.stage);
        marked.add(roles.database);
      }
      const seeded = await seedService(options, roles, runtimePassword);
      log("info", "service migrated", { service: roles.service, database: roles.database, applied, seeded });
      results.push({ service: roles.service, database: roles.database, applied, seeded });
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
  /** Comma-separated seed sets: `essential`, `development`, `staging`, `production`. */
  MIGRATE_SEEDS: z._default(z.string().check(z.regex(new RegExp(`^((${seedSets.join("|")})(,(${seedSets.join("|")}))*)?$`))), ""),
  STAGE: z.optional(stageSchema),
  SEED_ADMIN_PASSWORD: z.optional(z.string().check(z.minLength(8))),
  STAGING_SEED_PASSWORD: z.optional(z.string().check(z.minLength(12))),
});

/** Options from the function's environment: `<SERVICE>_RUNTIME_PASSWORD` per service. */
export function migrateOptionsFromEnv(env: Record<string, string | undefined>): MigrateStageOptions {
  const config = parseEnv(migrateEnv, env);
  if (config.MIGRATE_DATABASE && config.MIGRATE_TOPOLOGY === "per-service") {
    throw new ConfigError([
      "migrate: MIGRATE_DATABASE names the one shared database of the single topology; with MIGRATE_TOPOLOGY=per-service each service has its own database, so leave it unset",
    ]);
  }
  const seeds = config.MIGRATE_SEEDS ? (config.MIGRATE_SEEDS.split(",") as SeedSet[]) : [];
  const refusal = productionRefusal(seeds, { stage: config.STAGE, where: "STAGE" });
  if (refusal) throw new ConfigError([`migrate: MIGRATE_SEEDS: ${refusal}`]);
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
    seeds,
    ...(config.STAGE ? { stage: config.STAGE } : {}),
    ...(config.SEED_ADMIN_PASSWORD ? { seedAdminPassword: config.SEED_ADMIN_PASSWORD } : {}),
    ...(config.STAGING_SEED_PASSWORD ? { stagingSeedPassword: config.STAGING_SEED_PASSWORD } : {}),
  };
}

export const handler = async (): Promise<MigrateStageResult> => {
  const started = performance.now();
  try {
    // The administrator's URL and the runtime passwords are sealed into the package (SST_KEY_FILE).
    const result = await migrateStage(migrateOptionsFromEnv(withSealedSettings(process.env)));
    log("info", "stage migrated", { schema: result.schema, ms: Math.round(performance.now() - started) });
    return result;
  } catch (error) {
    log("error", "stage migration failed", { error: (error as Error).message });
    throw error;
  }
};
