import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, rowsOf } from "@enclave/core";
import { developmentPeople, stagingPeople } from "@enclave/core/seed";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { createLocalRuntime, StartupError } from "./runtime";
import { seed } from "./seed";

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/**
 * An environment whose data outlives one run: a fresh database on TEST_DATABASE_URL, else one
 * PGlite directory every service shares (each in its own schema).
 */
async function environment(extra: Record<string, string> = {}): Promise<{ env: Record<string, string>; url: string; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-seed-"));
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  let url = `pglite://${join(dataDir, "all")}`;
  if (testServerUrl) {
    const database: TestDatabase = await createTestDatabase([]);
    cleanup.push(() => database.dispose());
    url = database.url;
  }
  return { env: { DATA_DIR: dataDir, DATABASE_URL: url, LOG_LEVEL: "error", ...extra }, url, dataDir };
}

/** Every table of every schema but the system's, with its row count. */
async function countEveryTable(url: string): Promise<Record<string, number>> {
  const database = await openDatabase(url, { maxConnections: 1 });
  try {
    const tables = rowsOf<{ schema: string; name: string }>(
      await database.db.execute(
        sql`select table_schema as "schema", table_name as "name" from information_schema.tables
            where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema') order by 1, 2`,
      ),
    );
    const counts: Record<string, number> = {};
    for (const { schema, name } of tables) {
      const [row] = rowsOf<{ n: number }>(await database.db.execute(sql.raw(`select count(*)::int as n from "${schema}"."${name}"`)));
      counts[`${schema}.${name}`] = row?.n ?? -1;
    }
    return counts;
  } finally {
    await database.close();
  }
}

async function query<T>(url: string, text: string): Promise<T[]> {
  const database = await openDatabase(url, { maxConnections: 1 });
  try {
    return rowsOf<T>(await database.db.execute(sql.raw(text)));
  } finally {
    await database.close();
  }
}

/** Signs in through the runtime's auth routes, as a client would; the status tells whether the password works. */
async function signIn(env: Record<string, string>, email: string, password: string): Promise<number> {
  const runtime = await createLocalRuntime({ env: { ...env, LOCAL_CRONS: "0", SEED: "none" } });
  try {
    const response = await runtime.app.request("/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    return response.status;
  } finally {
    await runtime.close();
  }
}

describe("the development set", { timeout: 180_000 }, () => {
  test("the administrator, demo users with profiles, a payment in every status; a second run writes nothing", async () => {
    const { env, url } = await environment();
    expect(await seed("development", env)).toEqual(["essential", "development"]);

    const users = await query<{ email: string; role: string; id: string }>(url, `select email, role, id from auth.users order by email`);
    expect(users.map((u) => [u.email, u.role])).toEqual([
      ["ada@enclave.dev", "CUSTOMER"],
      ["admin@enclave.dev", "ADMIN"],
      ["grace@enclave.dev", "CUSTOMER"],
      ["shop@enclave.dev", "VENDOR"],
    ]);
    // Every user has exactly one profile: the demo users' with their details, the administrator's from user.registered.
    const profiles = await query<{ user_id: string; phone: string | null; bio: string | null }>(url, `select user_id, phone, bio from profile.user_profiles`);
    expect(profiles.map((p) => p.user_id).sort()).toEqual(users.map((u) => u.id).sort());
    for (const person of Object.values(developmentPeople)) expect(profiles.find((p) => p.user_id === person.id)?.bio).toEqual(expect.any(String));

    const payments = await query<{ id: string; status: string; history: string }>(
      url,
      `select p.id, p.status, string_agg(t.status, ',' order by t.seq) as history
       from payments.payments p join payments.payment_transactions t on t.payment_id = p.id group by p.id, p.status order by p.status`,
    );
    expect(payments.map((p) => [p.status, p.history])).toEqual([
      ["cancelled", "pending,cancelled"],
      ["completed", "pending,processing,completed"],
      ["completed", "pending,processing,completed"],
      ["failed", "pending,processing,failed"],
      ["pending", "pending"],
      ["processing", "pending,processing"],
    ]);
    const ids = new Set(users.map((u) => u.id));
    const parties = await query<{ sender_id: string; recipient_id: string }>(url, `select sender_id, recipient_id from payments.payments`);
    expect(parties.every((p) => ids.has(p.sender_id) && ids.has(p.recipient_id))).toBe(true);

    // Every seeded event reached the audit log once: users, profiles, payments, configuration.
    const audit = await query<{ action: string; n: number }>(url, `select action, count(*)::int as n from admin.audit_logs group by action order by action`);
    expect(Object.fromEntries(audit.map((a) => [a.action, a.n]))).toEqual({
      "config.changed": 3,
      "payment.cancelled": 1,
      "payment.completed": 2,
      "payment.created": 6,
      "payment.failed": 1,
      "profile.created": 4,
      "profile.updated": 3,
      "user.registered": 4,
    });

    const before = await countEveryTable(url);
    expect(before["auth.users"]).toBe(4);
    await seed("development", env);
    expect(await countEveryTable(url)).toEqual(before);
    expect(await signIn(env, developmentPeople.ada.email, "enclave-demo-dev")).toBe(200);
  });
});

describe("the staging and production sets", { timeout: 180_000 }, () => {
  test("staging: its accounts, no development data; passwords only from STAGING_SEED_PASSWORD", async () => {
    const { env, url } = await environment();
    await seed("staging", env);
    const users = await query<{ email: string }>(url, `select email from auth.users order by email`);
    expect(users.map((u) => u.email)).toEqual(
      Object.values(stagingPeople)
        .map((p) => p.email)
        .sort(),
    );
    expect(await query<{ n: number }>(url, `select count(*)::int as n from payments.payments where status in ('completed', 'pending', 'cancelled')`)).toEqual([
      { n: 4 },
    ]);
    expect(await query<{ n: number }>(url, `select count(*)::int as n from profile.user_profiles`)).toEqual([{ n: 4 }]);
    // Without the variable nobody knows the accounts' passwords: not the development ones, not an empty one.
    for (const password of ["enclave-demo-dev", "enclave-admin-dev", "undefined"]) expect(await signIn(env, stagingPeople.support.email, password)).toBe(401);

    const before = await countEveryTable(url);
    const withPassword = { ...env, STAGING_SEED_PASSWORD: "staging-Pa55word-from-vault" };
    await seed("staging", withPassword);
    expect(await countEveryTable(url)).toEqual(before);
    expect(await signIn(env, stagingPeople.support.email, "staging-Pa55word-from-vault")).toBe(200);
    expect(await signIn(env, stagingPeople.maria.email, "staging-Pa55word-from-vault")).toBe(200);
  });

  test("production: the essential configuration and nothing else", async () => {
    const { env, url } = await environment();
    expect(await seed("production", env)).toEqual(["essential", "production"]);
    const counts = await countEveryTable(url);
    expect(counts["admin.system_config"]).toBe(3);
    // Besides each service's migration bookkeeping, only the configuration, its audit rows and its events.
    const written = Object.entries(counts).filter(([table, n]) => n > 0 && !table.endsWith("_migrations.applied"));
    expect(Object.fromEntries(written)).toEqual({ "admin.system_config": 3, "admin.audit_logs": 3, "admin.outbox": 3 });
    await seed("production", env);
    expect(await countEveryTable(url)).toEqual(counts);
  });
});

describe("refused against production", { timeout: 120_000 }, () => {
  test("STAGE=production: development and staging are refused and nothing is created", async () => {
    const { env, dataDir } = await environment({ STAGE: "production" });
    delete env.DATABASE_URL; // the default: a PGlite directory per service under DATA_DIR
    for (const environment of ["development", "staging"] as const) {
      const refused = await seed(environment, env).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StartupError);
      expect((refused as StartupError).problems).toEqual([`db:seed: the ${environment} seed set is refused on production: STAGE is production`]);
    }
    expect(readdirSync(dataDir)).toEqual([]);
  });

  test.skipIf(!testServerUrl)("a database marked as production refuses them whatever STAGE says, before anything is written", async () => {
    const { env, url } = await environment({ STAGE: "local" });
    const name = new URL(url).pathname.slice(1);
    const database = await openDatabase(url, { maxConnections: 1 });
    await database.db.execute(sql.raw(`comment on database "${name}" is 'enclave stage: production'`));
    await database.close();

    const refused = await seed("development", env).catch((error: unknown) => error);
    expect((refused as StartupError).problems).toEqual([
      `db:seed: auth, admin, profile, payments: DATABASE_URL: the development seed set is refused on production: the database is marked as stage production (database comment "enclave stage: production")`,
    ]);
    const schemas = await query<{ n: number }>(url, `select count(*)::int as n from pg_namespace where nspname in ('auth', 'admin', 'profile', 'payments')`);
    expect(schemas).toEqual([{ n: 0 }]);
    expect(existsSync(join(env.DATA_DIR as string, "local"))).toBe(false);

    // Production's own set is what such a database takes.
    await seed("production", env);
    expect((await countEveryTable(url))["auth.users"]).toBe(0);
  });
});
