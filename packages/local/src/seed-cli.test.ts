import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, rowsOf } from "@enclave/core";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, test } from "vitest";
import { runCli } from "./cli.testing";

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "enclave-seed-cli-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const seedCli = (args: string[], env: Record<string, string>) => runCli(["seed", ...args], { LOG_LEVEL: "error", ...env });

describe("npm run db:seed: what it refuses", { timeout: 60_000 }, () => {
  test.each([
    [["--env", "demo"], 'unknown seed set "demo" (one of: essential, development, staging, production)'],
    [["--env"], "--env needs a value"],
    [["--service", "billing"], 'unknown service "billing" (known: auth, admin, profile, payments)'],
    [["--stage", "x"], "seed has no option --stage"],
    [["development"], 'seed takes no argument "development"'],
  ])("%j: one line and the usage, exit 2, nothing written", async (args, message) => {
    const dir = dataDir();
    const result = await seedCli(args, { DATA_DIR: dir });
    expect(result.code).toBe(2);
    expect(result.stderr.split("\n")[0]).toBe(message);
    expect(result.stderr).toContain("npm run db:seed [-- --env <set>]");
    expect(result.stdout).toBe("");
    expect(readdirSync(dir)).toEqual([]);
  });

  test("--tenant: tenants are not configured, exit 1, nothing written", async () => {
    const dir = dataDir();
    const result = await seedCli(["--env", "development", "--tenant", "acme"], { DATA_DIR: dir });
    expect(result).toMatchObject({ code: 1, stdout: "", stderr: "db:seed: --tenant acme: tenants are not configured\n" });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("development or staging with STAGE=production: one line, exit 1, nothing written", async () => {
    for (const set of ["development", "staging"]) {
      const dir = dataDir();
      const result = await seedCli(["--env", set], { DATA_DIR: dir, STAGE: "production" });
      expect(result).toMatchObject({ code: 1, stdout: "", stderr: `db:seed: the ${set} seed set is refused on production: STAGE is production\n` });
      expect(readdirSync(dir)).toEqual([]);
    }
  });
});

describe("npm run db:seed: a run", { timeout: 120_000 }, () => {
  test("--env development --service auth seeds auth only and says what it applied", async () => {
    const dir = dataDir();
    const url = `pglite://${join(dir, "shared")}`;
    const result = await seedCli(["--env", "development", "--service", "auth"], { DATA_DIR: dir, DATABASE_URL: url });
    expect(result).toMatchObject({ code: 0, stderr: "", stdout: "seeded essential, development into auth\n" });
    const database = await openDatabase(url, { maxConnections: 1 });
    try {
      const schemas = rowsOf<{ name: string }>(
        await database.db.execute(sql`select nspname as "name" from pg_namespace where nspname in ('auth', 'admin', 'profile', 'payments') order by 1`),
      );
      expect(schemas).toEqual([{ name: "auth" }]);
      expect(rowsOf(await database.db.execute(sql`select count(*)::int as n from auth.users`))).toEqual([{ n: 4 }]);
    } finally {
      await database.close();
    }
  });
});
