/** `npm run db:migrate` and `npm run db:seed` per tenant, run as a user runs them. */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, rowsOf } from "@enclave/core";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { runCli } from "./cli.testing";

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "enclave-tenants-cli-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function registry(dir: string, tenants: unknown): string {
  const file = join(dir, "tenants.json");
  writeFileSync(file, JSON.stringify(tenants));
  return file;
}

const cli = (args: string[], env: Record<string, string>) => runCli(args, { LOG_LEVEL: "error", ...env });

describe("--tenant: what is refused", { timeout: 60_000 }, () => {
  test("without TENANTS_FILE, db:migrate --tenant says tenants are not configured, exit 1, nothing written", async () => {
    const dir = dataDir();
    const result = await cli(["migrate", "--tenant", "acme"], { DATA_DIR: dir });
    expect(result).toMatchObject({ code: 1, stdout: "", stderr: "db:migrate: --tenant acme: tenants are not configured\n" });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a tenant the registry lacks: one line and the usage, exit 2", async () => {
    const dir = dataDir();
    const file = registry(dir, { tenants: { acme: { DATABASE_URL: `pglite://${join(dir, "acme")}` } } });
    for (const command of ["migrate", "seed"]) {
      const result = await cli([command, "--tenant", "initech"], { DATA_DIR: dir, TENANTS_FILE: file });
      expect(result.code).toBe(2);
      expect(result.stderr.split("\n")[0]).toBe('unknown tenant "initech" (known: acme, or all)');
      expect(result.stderr).toContain("--tenant <id>|all");
    }
    expect(readdirSync(dir)).toEqual(["tenants.json"]);
  });

  test("an unreadable or invalid registry: one line naming TENANTS_FILE, exit 1", async () => {
    const dir = dataDir();
    const missing = await cli(["migrate"], { DATA_DIR: dir, TENANTS_FILE: join(dir, "none.json") });
    expect(missing).toMatchObject({ code: 1, stderr: `TENANTS_FILE: cannot read ${join(dir, "none.json")} (no such file)\n` });
    const file = registry(dir, { tenants: { acme: { DATABASE_URL: "mysql://user:hunter2@db/acme" } } });
    const invalid = await cli(["seed", "--tenant", "acme"], { DATA_DIR: dir, TENANTS_FILE: file });
    expect(invalid).toMatchObject({
      code: 1,
      stdout: "",
      stderr: 'TENANTS_FILE: tenant "acme": DATABASE_URL: must be pglite://memory, pglite://<dir>, postgres://… or a Neon URL\n',
    });
  });
});

describe.skipIf(!testServerUrl)("per tenant on PostgreSQL (set TEST_DATABASE_URL to run)", { timeout: 180_000 }, () => {
  async function tenantDatabases() {
    const acme = await createTestDatabase([]);
    const globex = await createTestDatabase([]);
    cleanup.push(
      () => acme.dispose(),
      () => globex.dispose(),
    );
    return { acme, globex };
  }
  async function query(database: TestDatabase, text: ReturnType<typeof sql>) {
    const opened = await openDatabase(database.url, { maxConnections: 1 });
    try {
      return rowsOf<Record<string, unknown>>(await opened.db.execute(text));
    } finally {
      await opened.close();
    }
  }
  const schemas = (database: TestDatabase) =>
    query(database, sql`select nspname as "name" from pg_namespace where nspname in ('auth', 'admin', 'profile', 'payments') order by 1`);

  test("db:migrate --tenant <id> migrates that tenant only; without --tenant, every tenant", async () => {
    const dir = dataDir();
    const { acme, globex } = await tenantDatabases();
    const env = { DATA_DIR: dir, TENANTS_FILE: registry(dir, { tenants: { acme: { DATABASE_URL: acme.url }, globex: { DATABASE_URL: globex.url } } }) };

    const one = await cli(["migrate", "--tenant", "acme"], env);
    expect(one).toMatchObject({ code: 0, stderr: "" });
    expect(
      one.stdout
        .trim()
        .split("\n")
        .map((line) => line.replace(/applied .*/, "applied")),
    ).toEqual(["acme: auth: applied", "acme: admin: applied", "acme: profile: applied", "acme: payments: applied"]);
    expect(await schemas(acme)).toEqual([{ name: "admin" }, { name: "auth" }, { name: "payments" }, { name: "profile" }]);
    expect(await schemas(globex)).toEqual([]);

    const all = await cli(["migrate"], env);
    expect(all).toMatchObject({ code: 0, stderr: "" });
    const lines = all.stdout.trim().split("\n");
    expect(lines.filter((line) => line.startsWith("acme: "))).toEqual([
      "acme: auth: up to date",
      "acme: admin: up to date",
      "acme: profile: up to date",
      "acme: payments: up to date",
    ]);
    expect(lines.filter((line) => line.startsWith("globex: ")).map((line) => line.replace(/applied .*/, "applied"))).toEqual([
      "globex: auth: applied",
      "globex: admin: applied",
      "globex: profile: applied",
      "globex: payments: applied",
    ]);
    expect(await schemas(globex)).toEqual([{ name: "admin" }, { name: "auth" }, { name: "payments" }, { name: "profile" }]);
  });

  test("db:seed --tenant <id> seeds that tenant only, and again writes nothing new", async () => {
    const dir = dataDir();
    const { acme, globex } = await tenantDatabases();
    const env = { DATA_DIR: dir, TENANTS_FILE: registry(dir, { tenants: { acme: { DATABASE_URL: acme.url }, globex: { DATABASE_URL: globex.url } } }) };

    const first = await cli(["seed", "--env", "development", "--tenant", "globex"], env);
    expect(first).toMatchObject({ code: 0, stderr: "", stdout: "globex: seeded essential, development into auth, admin, profile, payments\n" });
    const users = sql`select email, role from auth.users order by email`;
    const seeded = await query(globex, users);
    expect(seeded).toContainEqual({ email: "admin@enclave.dev", role: "ADMIN" });
    // Its events were delivered in globex: every seeded user has a profile there.
    expect(await query(globex, sql`select count(*)::int as n from profile.user_profiles`)).toEqual([{ n: seeded.length }]);
    expect(await schemas(acme)).toEqual([]);

    const again = await cli(["seed", "--env", "development", "--tenant", "globex"], env);
    expect(again.code).toBe(0);
    expect(await query(globex, users)).toEqual(seeded);
  });
});
