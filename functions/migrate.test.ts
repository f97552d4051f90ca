import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { SeedSet } from "@enclave/core";
import { type Database, openDatabase, rowsOf } from "@enclave/core/db/index";
import { dropRoles, serviceRoles } from "@enclave/core/db/roles";
import { readStageMarker, readStageMarkers } from "@enclave/core/seed";
import { testServerUrl } from "@enclave/core/testing/database";
import { startNeonProxy } from "@enclave/core/testing/neon-proxy";
import { sql } from "drizzle-orm";
import { afterAll, describe, expect, test } from "vitest";
import { bundleFunction } from "../infra/bundle";
import { databaseUrl, handler, migrateOptionsFromEnv, migrateStage } from "./migrate";

const repositoryMigrations = resolve(import.meta.dirname, "../migrations");
const password = () => randomBytes(24).toString("base64url");

/** The repository's migrations plus extra services: `ledger` migrates cleanly, `broken` fails. */
function migrationsRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "enclave-migrate-fn-"));
  cpSync(repositoryMigrations, root, { recursive: true });
  const extra = { ledger: '"id" bigint PRIMARY KEY', broken: '"id" nonexistent_type' };
  for (const [service, column] of Object.entries(extra)) {
    mkdirSync(join(root, service, "meta"), { recursive: true });
    writeFileSync(
      join(root, service, "meta", "_journal.json"),
      JSON.stringify({ version: "7", dialect: "postgresql", entries: [{ idx: 0, version: "7", when: 1, tag: "0000_init", breakpoints: true }] }),
    );
    writeFileSync(join(root, service, "0000_init.sql"), `CREATE SCHEMA "${service}";\n--> statement-breakpoint\nCREATE TABLE "${service}"."t" (${column});`);
  }
  return root;
}

/** Every service with migrations in the repository, plus a second one so isolation is always tested. */
const services = [...readdirSync(repositoryMigrations).sort(), "ledger"];

describe("migrate function configuration", () => {
  test("reads the services, the topology and each runtime password from the environment", () => {
    const options = migrateOptionsFromEnv({
      MIGRATE_ADMIN_URL: "postgres://admin:pw@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require",
      MIGRATE_SERVICES: "auth,profile",
      MIGRATE_TOPOLOGY: "single",
      MIGRATE_DATABASE: "enclave",
      AUTH_RUNTIME_PASSWORD: "a".repeat(32),
      PROFILE_RUNTIME_PASSWORD: "b".repeat(32),
      LAMBDA_TASK_ROOT: "/var/task",
    });
    expect(options).toEqual({
      adminUrl: "postgres://admin:pw@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require",
      topology: "single",
      database: "enclave",
      services: [
        { name: "auth", runtimePassword: "a".repeat(32) },
        { name: "profile", runtimePassword: "b".repeat(32) },
      ],
      migrationsDir: "/var/task/migrations",
      seeds: [],
    });
  });

  test("reads the seed sets", () => {
    const options = migrateOptionsFromEnv({
      MIGRATE_ADMIN_URL: "postgres://a@h/db",
      MIGRATE_SERVICES: "auth",
      AUTH_RUNTIME_PASSWORD: "x".repeat(30),
      MIGRATE_SEEDS: "essential,development",
      STAGE: "pr-1",
    });
    expect(options).toMatchObject({ seeds: ["essential", "development"], stage: "pr-1" });
    expect(() =>
      migrateOptionsFromEnv({ MIGRATE_ADMIN_URL: "postgres://a@h/db", MIGRATE_SERVICES: "auth", AUTH_RUNTIME_PASSWORD: "x".repeat(30), MIGRATE_SEEDS: "all" }),
    ).toThrow(/MIGRATE_SEEDS/);
  });

  test("reads every seed set and the staging password; refuses development and staging on production", () => {
    const base = { MIGRATE_ADMIN_URL: "postgres://a@h/db", MIGRATE_SERVICES: "auth", AUTH_RUNTIME_PASSWORD: "x".repeat(30) };
    expect(migrateOptionsFromEnv({ ...base, MIGRATE_SEEDS: "essential,staging", STAGE: "staging", STAGING_SEED_PASSWORD: "from-the-vault-1" })).toMatchObject({
      seeds: ["essential", "staging"],
      stagingSeedPassword: "from-the-vault-1",
    });
    expect(migrateOptionsFromEnv({ ...base, MIGRATE_SEEDS: "essential,production", STAGE: "production" }).seeds).toEqual(["essential", "production"]);
    for (const set of ["development", "staging"]) {
      expect(() => migrateOptionsFromEnv({ ...base, MIGRATE_SEEDS: `essential,${set}`, STAGE: "production" })).toThrow(
        `migrate: MIGRATE_SEEDS: the ${set} seed set is refused on production: STAGE is production`,
      );
    }
    expect(() => migrateOptionsFromEnv({ ...base, STAGING_SEED_PASSWORD: "short" })).toThrow(/STAGING_SEED_PASSWORD/);
  });

  test("refuses a shared database name with a database per service (every service would land in it)", () => {
    expect(() =>
      migrateOptionsFromEnv({
        MIGRATE_ADMIN_URL: "postgres://a@h/db",
        MIGRATE_SERVICES: "auth,profile",
        MIGRATE_TOPOLOGY: "per-service",
        MIGRATE_DATABASE: "enclave",
        AUTH_RUNTIME_PASSWORD: "x".repeat(30),
        PROFILE_RUNTIME_PASSWORD: "y".repeat(30),
      }),
    ).toThrow(/MIGRATE_DATABASE .* leave it unset/);
  });

  test("defaults to a database per service and names what is missing", () => {
    expect(migrateOptionsFromEnv({ MIGRATE_ADMIN_URL: "postgres://a@h/db", MIGRATE_SERVICES: "auth", AUTH_RUNTIME_PASSWORD: "x".repeat(30) }).topology).toBe(
      "per-service",
    );
    expect(() => migrateOptionsFromEnv({ MIGRATE_ADMIN_URL: "postgres://a@h/db", MIGRATE_SERVICES: "auth" })).toThrow(/AUTH_RUNTIME_PASSWORD is required/);
    expect(() => migrateOptionsFromEnv({ MIGRATE_SERVICES: "auth" })).toThrow(/MIGRATE_ADMIN_URL is required/);
    expect(() => migrateOptionsFromEnv({ MIGRATE_ADMIN_URL: "postgres://a@h/db", MIGRATE_SERVICES: "auth", MIGRATE_TOPOLOGY: "sharded" })).toThrow(
      /MIGRATE_TOPOLOGY/,
    );
  });

  test("points the admin URL at another database of the same server", () => {
    expect(databaseUrl("postgres://u:p@ep-x.aws.neon.tech/neondb?sslmode=require", "auth")).toBe("postgres://u:p@ep-x.aws.neon.tech/auth?sslmode=require");
  });
});

describe("migrate function on one database (single topology)", () => {
  const prefix = `m${randomBytes(3).toString("hex")}_`;
  const databases: string[] = [];
  afterAll(async () => {
    if (!testServerUrl) return;
    const admin = await openDatabase(testServerUrl, { maxConnections: 1 });
    for (const database of databases) await admin.db.execute(sql.raw(`drop database if exists "${database}" with (force)`));
    await dropRoles(
      admin.db,
      [...services, "broken"].map((s) => serviceRoles(s, { topology: "single", prefix })),
    );
    await admin.close();
  });

  /** A fresh server database (or a PGlite directory) the test can open twice. */
  async function freshTarget(): Promise<{ url: string; database: string }> {
    if (!testServerUrl) {
      const dir = mkdtempSync(join(tmpdir(), "enclave-migrate-pglite-"));
      return { url: `pglite://${dir}`, database: "postgres" };
    }
    const database = `${prefix}single${databases.length}`;
    const admin = await openDatabase(testServerUrl, { maxConnections: 1 });
    await admin.db.execute(sql.raw(`create database "${database}"`));
    await admin.close();
    databases.push(database);
    return { url: databaseUrl(testServerUrl, database), database };
  }

  test("creates the roles, applies every service's migrations as its owner, and is idempotent", async () => {
    const target = await freshTarget();
    const options = {
      adminUrl: target.url,
      topology: "single" as const,
      database: target.database,
      services: services.map((name) => ({ name, runtimePassword: password() })),
      migrationsDir: migrationsRoot(),
      rolePrefix: prefix,
    };
    const first = await migrateStage(options);
    expect(first.services.map((s) => s.service)).toEqual(services);
    expect(first.services.find((s) => s.service === "auth")?.applied).toContain("0000_init");
    expect(first.schema).toMatch(/^[0-9a-f]{16}$/);

    const again = await migrateStage(options);
    expect(again.services.every((s) => s.applied.length === 0)).toBe(true);
    expect(again.schema).toBe(first.schema);

    const db = await openDatabase(target.url, { maxConnections: 1 });
    try {
      const owner = rowsOf<{ owner: string }>(
        await db.db.execute(sql.raw(`select tableowner as owner from pg_tables where schemaname = 'auth' and tablename = 'users'`)),
      );
      expect(owner).toEqual([{ owner: `${prefix}auth_owner` }]);
      const grants = rowsOf<{ privilege_type: string }>(
        await db.db.execute(
          sql.raw(
            `select privilege_type from information_schema.role_table_grants where grantee = '${prefix}auth_app' and table_schema = 'auth' and table_name = 'users' order by 1`,
          ),
        ),
      );
      expect(grants.map((g) => g.privilege_type)).toEqual(["DELETE", "INSERT", "SELECT", "UPDATE"]);
    } finally {
      await db.close();
    }
  });

  /** Rows of every table of the services' schemas. */
  async function countTables(url: string): Promise<Record<string, number>> {
    const db = await openDatabase(url, { maxConnections: 1 });
    try {
      const tables = rowsOf<{ name: string }>(
        await db.db.execute(
          sql.raw(
            `select table_schema || '.' || table_name as name from information_schema.tables where table_schema in ('auth', 'admin', 'profile', 'payments') order by 1`,
          ),
        ),
      );
      const counts: Record<string, number> = {};
      for (const { name } of tables) counts[name] = rowsOf<{ n: number }>(await db.db.execute(sql.raw(`select count(*)::int as n from ${name}`)))[0]!.n;
      return counts;
    } finally {
      await db.close();
    }
  }

  test.skipIf(!testServerUrl)("seeds the development set as each runtime role, marks the database with the stage, and seeds nothing twice", async () => {
    const target = await freshTarget();
    const options = {
      adminUrl: target.url,
      topology: "single" as const,
      database: target.database,
      services: ["auth", "admin", "profile", "payments"].map((name) => ({ name, runtimePassword: password() })),
      migrationsDir: repositoryMigrations,
      rolePrefix: prefix,
      seeds: ["essential", "development"] as SeedSet[],
      stage: "pr-7",
    };
    const first = await migrateStage(options);
    expect(first.services.map((s) => [s.service, s.seeded])).toEqual([
      ["auth", ["development"]],
      ["admin", ["essential"]],
      ["profile", ["development"]],
      ["payments", ["development"]],
    ]);
    const counts = await countTables(target.url);
    expect(counts).toMatchObject({
      "auth.users": 4,
      "admin.system_config": 3,
      "profile.user_profiles": 3,
      "payments.payments": 6,
      "payments.payment_transactions": 14,
    });
    // The events wait in the outboxes for the sweepers (the bus rules do not exist yet during a deploy).
    expect(counts).toMatchObject({ "auth.outbox": 4, "payments.outbox": 10 });
    const db = await openDatabase(target.url, { maxConnections: 1 });
    try {
      expect(await readStageMarker(db.db)).toBe("pr-7");
    } finally {
      await db.close();
    }
    await migrateStage(options);
    expect(await countTables(target.url)).toEqual(counts);
  });

  test.skipIf(!testServerUrl)("a database marked as production refuses the development set before anything is written", async () => {
    const target = await freshTarget();
    const db = await openDatabase(target.url, { maxConnections: 1 });
    await db.db.execute(sql.raw(`comment on database "${target.database}" is 'enclave stage: production'`));
    await db.close();
    const options = {
      adminUrl: target.url,
      topology: "single" as const,
      database: target.database,
      services: [{ name: "auth", runtimePassword: password() }],
      migrationsDir: repositoryMigrations,
      rolePrefix: `${prefix}x`,
      seeds: ["essential", "development"] as SeedSet[],
      stage: "pr-8",
    };
    await expect(migrateStage(options)).rejects.toThrow(
      `migrate: the development seed set is refused on production: database ${target.database} is marked as stage production (database comment "enclave stage: production")`,
    );
    await expect(migrateStage({ ...options, stage: "production" })).rejects.toThrow(
      "migrate: the development seed set is refused on production: the stage is production",
    );
    expect(await countTables(target.url)).toEqual({});
    const admin = await openDatabase(testServerUrl as string, { maxConnections: 1 });
    try {
      expect(rowsOf(await admin.db.execute(sql.raw(`select rolname from pg_roles where rolname like '${prefix}x%'`)))).toEqual([]);
    } finally {
      await admin.close();
    }
  });

  test("a failing migration fails the invocation and leaves that service's schema untouched", async () => {
    const target = await freshTarget();
    const env = {
      MIGRATE_ADMIN_URL: target.url,
      MIGRATE_TOPOLOGY: "single",
      MIGRATE_DATABASE: target.database,
      MIGRATE_SERVICES: "auth,broken",
      AUTH_RUNTIME_PASSWORD: password(),
      BROKEN_RUNTIME_PASSWORD: password(),
      MIGRATIONS_DIR: migrationsRoot(),
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      // Role names without a prefix on a shared server would collide: only PGlite runs the handler itself.
      if (testServerUrl) {
        await expect(migrateStage({ ...migrateOptionsFromEnv(env), rolePrefix: prefix })).rejects.toThrow(
          /\[broken\] 0000_init failed: type "nonexistent_type" does not exist/,
        );
      } else {
        await expect(handler()).rejects.toThrow(/\[broken\] 0000_init failed: type "nonexistent_type" does not exist/);
      }
    } finally {
      process.env = saved;
    }
    const db: Database = await openDatabase(target.url, { maxConnections: 1 });
    try {
      const schemas = rowsOf<{ nspname: string }>(
        await db.db.execute(sql.raw(`select nspname from pg_namespace where nspname in ('auth', 'broken') order by 1`)),
      );
      expect(schemas).toEqual([{ nspname: "auth" }]);
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(!testServerUrl)("migrate function with a database per service", () => {
  const prefix = `p${randomBytes(3).toString("hex")}_`;
  let admin: Database;
  afterAll(async () => {
    if (!admin) return;
    for (const service of services) await admin.db.execute(sql.raw(`drop database if exists "${prefix}${service}" with (force)`));
    await dropRoles(
      admin.db,
      services.map((s) => serviceRoles(s, { topology: "per-service", prefix })),
    );
    await admin.close();
  });

  test("creates one database per service, owned by its owner, that only its runtime role can connect to", async () => {
    admin = await openDatabase(testServerUrl as string, { maxConnections: 1 });
    const passwords = Object.fromEntries(services.map((s) => [s, password()]));
    const result = await migrateStage({
      adminUrl: testServerUrl as string,
      topology: "per-service",
      services: services.map((name) => ({ name, runtimePassword: passwords[name] as string })),
      migrationsDir: migrationsRoot(),
      rolePrefix: prefix,
      stage: "pr-9",
    });
    expect(result.services.map((s) => s.database)).toEqual(services.map((s) => `${prefix}${s}`));
    // Each database is marked with the stage, by its owner (the administrator does not own it).
    const markers = await readStageMarkers(
      admin.db,
      services.map((s) => `${prefix}${s}`),
    );
    expect([...markers.values()]).toEqual(services.map(() => "pr-9"));
    const owners = rowsOf<{ datname: string; owner: string }>(
      await admin.db.execute(sql.raw(`select datname, pg_get_userbyid(datdba) as owner from pg_database where datname like '${prefix}%' order by 1`)),
    );
    expect(owners).toEqual([...services].sort().map((s) => ({ datname: `${prefix}${s}`, owner: `${prefix}${s}_owner` })));

    // The runtime role connects with its password and works on its own schema.
    const authUrl = new URL(databaseUrl(testServerUrl as string, `${prefix}auth`));
    authUrl.username = `${prefix}auth_app`;
    authUrl.password = passwords.auth as string;
    const runtime = await openDatabase(authUrl.toString(), { maxConnections: 1 });
    try {
      expect(rowsOf(await runtime.db.execute(sql.raw("select count(*)::int as n from auth.users")))).toEqual([{ n: 0 }]);
      const denied = await runtime.db.execute(sql.raw("create table auth.rogue (id int)")).catch((error) => error.cause?.message ?? error.message);
      expect(denied).toMatch(/permission denied/);
    } finally {
      await runtime.close();
    }

    // Running again (the next deploy) changes nothing.
    const again = await migrateStage({
      adminUrl: testServerUrl as string,
      topology: "per-service",
      services: services.map((name) => ({ name, runtimePassword: passwords[name] as string })),
      migrationsDir: migrationsRoot(),
      rolePrefix: prefix,
    });
    expect(again.services.every((s) => s.applied.length === 0)).toBe(true);
  });

  test("another service's runtime role cannot connect to a service's database", async () => {
    const other = services.find((s) => s !== "auth");
    const url = new URL(databaseUrl(testServerUrl as string, `${prefix}auth`));
    url.username = `${prefix}${other}_app`;
    const intruder = await openDatabase(url.toString(), { maxConnections: 1 });
    try {
      const denied = await intruder.db.execute(sql`select 1`).catch((error) => error.cause?.message ?? error.message);
      expect(String(denied)).toMatch(/permission denied for database/);
    } finally {
      await intruder.close().catch(() => {});
    }
  });
});

describe.skipIf(!testServerUrl)("the migrate function as deployed: its bundle, on PostgreSQL through the Neon driver", () => {
  const prefix = `b${randomBytes(3).toString("hex")}_`;
  afterAll(async () => {
    const admin = await openDatabase(testServerUrl as string, { maxConnections: 1 });
    for (const service of services) await admin.db.execute(sql.raw(`drop database if exists "${prefix}${service}" with (force)`));
    await dropRoles(
      admin.db,
      services.map((s) => serviceRoles(s, { topology: "per-service", prefix })),
    );
    await admin.close();
  });

  test("the bundle, with migrations copied beside it and no node_modules, migrates every service", async () => {
    // Built exactly as the deployment builds it (infra/sizing.ts), migrations copied as copyFiles does.
    const task = mkdtempSync(join(tmpdir(), "enclave-migrate-bundle-"));
    const { main } = await bundleFunction(resolve(import.meta.dirname, "migrate.ts"), task);
    cpSync(migrationsRoot(), join(task, "migrations"), { recursive: true });

    const proxy = await startNeonProxy();
    try {
      const adminUrl = new URL(testServerUrl as string);
      adminUrl.searchParams.set("driver", "neon");
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "",
        LAMBDA_TASK_ROOT: task,
        MIGRATE_ADMIN_URL: adminUrl.toString(),
        MIGRATE_SERVICES: services.join(","),
        MIGRATE_ROLE_PREFIX: prefix,
        NEON_WS_PROXY: proxy.wsProxy,
        LOG_LEVEL: "error",
        ...Object.fromEntries(services.map((s) => [`${s.toUpperCase()}_RUNTIME_PASSWORD`, password()])),
      };
      const script = `import(${JSON.stringify(main)}).then((m) => m.handler()).then((r) => process.stdout.write("\\n" + JSON.stringify(r)))`;
      const output = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: task, env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("close", (code) => done({ code, stdout, stderr }));
      });
      expect(output.stderr).toBe("");
      expect(output.code).toBe(0);
      // Log lines first (what CloudWatch would get), the handler's result last.
      const lines = output.stdout.split("\n").filter(Boolean);
      expect(lines.slice(0, -1).map((line) => JSON.parse(line).msg)).toContain("stage migrated");
      const result = JSON.parse(lines.at(-1)!) as { schema: string; services: { service: string; database: string; applied: string[] }[] };
      expect(result.services.map((s) => s.database)).toEqual(services.map((s) => `${prefix}${s}`));
      expect(result.services.every((s) => s.applied.includes("0000_init") || s.applied[0]?.startsWith("0000_"))).toBe(true);
      // It went through the Neon driver's WebSocket path, not node-postgres (which the bundle does not carry).
      expect(proxy.connections).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});
