import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestDatabase, migrationsDir, type TestDatabase, testServerUrl } from "../testing/database";
import { type Db, openDatabase, rowsOf } from "./index";
import { applyGrants, checkPassword, dropRoles, ensureRoles, grantStatements, migrateAsOwner, type ServiceRoles, serviceRoles } from "./roles";

/** A second service with a sequence, to check that schemas stay apart. */
function migrationsRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "enclave-roles-"));
  cpSync(migrationsDir("auth"), join(root, "auth"), { recursive: true });
  mkdirSync(join(root, "ledger", "meta"), { recursive: true });
  writeFileSync(
    join(root, "ledger", "meta", "_journal.json"),
    JSON.stringify({ version: "7", dialect: "postgresql", entries: [{ idx: 0, version: "7", when: 1_790_000_000_000, tag: "0000_init", breakpoints: true }] }),
  );
  writeFileSync(
    join(root, "ledger", "0000_init.sql"),
    'CREATE SCHEMA "ledger";\n--> statement-breakpoint\nCREATE TABLE "ledger"."entries" ("id" serial PRIMARY KEY NOT NULL, "amount_minor" bigint NOT NULL);',
  );
  return root;
}

/** The message PostgreSQL gave (drizzle wraps it in `cause`). */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause;
    return cause?.message ?? (error as Error).message;
  }
  throw new Error("expected the statement to fail");
}

/** Runs statements as `role` in a transaction that is always rolled back. */
async function asRole(db: Db, role: string, statement: string): Promise<unknown[]> {
  let rows: unknown[] = [];
  await db
    .transaction(async (tx) => {
      await tx.execute(sql.raw(`set local role "${role}"`));
      rows = rowsOf(await tx.execute(sql.raw(statement)));
      throw new Rollback();
    })
    .catch((error) => {
      if (!(error instanceof Rollback)) throw error;
    });
  return rows;
}
class Rollback extends Error {}

const password = () => randomBytes(24).toString("base64url");

describe("serviceRoles", () => {
  test("names the owner, the runtime role and the database for each topology", () => {
    expect(serviceRoles("auth", { topology: "per-service" })).toEqual({ service: "auth", owner: "auth_owner", runtime: "auth_app", database: "auth" });
    expect(serviceRoles("auth", { topology: "single" })).toEqual({ service: "auth", owner: "auth_owner", runtime: "auth_app", database: "enclave" });
    expect(serviceRoles("auth", { topology: "single", database: "shop", prefix: "t1_" })).toMatchObject({ owner: "t1_auth_owner", database: "shop" });
    expect(serviceRoles("auth", { topology: "per-service", prefix: "t1_" }).database).toBe("t1_auth");
  });

  test("rejects names that would need quoting or could inject SQL", () => {
    expect(() => serviceRoles('auth"; drop', { topology: "single" })).toThrow(/identifier/);
    expect(() => serviceRoles("Auth", { topology: "single" })).toThrow(/identifier/);
    expect(() => serviceRoles("auth", { topology: "single", database: "a-b" })).toThrow(/identifier/);
  });

  test("accepts only long, quote-free generated passwords", () => {
    expect(checkPassword("a".repeat(24))).toBe("a".repeat(24));
    expect(() => checkPassword("short")).toThrow(/24\.\.128/);
    expect(() => checkPassword(`${"a".repeat(30)}'; drop role x; --`)).toThrow();
  });

  test("grants DML on the service's own schema and nothing on another's", () => {
    const statements = grantStatements(serviceRoles("auth", { topology: "per-service" }), "per-service");
    expect(statements).toContain('grant select, insert, update, delete on all tables in schema "auth" to "auth_app"');
    expect(statements).toContain('revoke all on database "auth" from public');
    expect(statements.join("\n")).not.toMatch(/auth_migrations|truncate|references|trigger|grant all/);
    expect(grantStatements(serviceRoles("auth", { topology: "single" }), "single")).toContain('grant create, connect on database "enclave" to "auth_owner"');
    expect(grantStatements(serviceRoles("auth", { topology: "single" }), "single", { schemaExists: false }).join("\n")).not.toMatch(/schema "auth"/);
  });
});

test("the admin role's audit log is append-only: its DML is revoked after the schema-wide grant, on every run", () => {
  const statements = grantStatements(serviceRoles("admin", { topology: "per-service" }), "per-service");
  const revoke = statements.findIndex((s) => s.includes('revoke update, delete, truncate on "admin"."audit_logs" from "admin_app"'));
  const grant = statements.indexOf('grant select, insert, update, delete on all tables in schema "admin" to "admin_app"');
  expect(grant).toBeGreaterThanOrEqual(0);
  expect(revoke).toBeGreaterThan(grant);
  expect(grantStatements(serviceRoles("payments", { topology: "per-service" }), "per-service").join("\n")).not.toMatch(/revoke update/);
});

describe("roles and grants on a database (single topology)", () => {
  const prefix = `t${randomBytes(3).toString("hex")}_`;
  let database: TestDatabase;
  let auth: ServiceRoles;
  let ledger: ServiceRoles;
  let root: string;

  beforeAll(async () => {
    root = migrationsRoot();
    database = await createTestDatabase([]);
    const name = rowsOf<{ name: string }>(await database.db.execute(sql`select current_database() as name`))[0]!.name;
    auth = serviceRoles("auth", { topology: "single", database: name, prefix });
    ledger = serviceRoles("ledger", { topology: "single", database: name, prefix });
    await ensureRoles(database.db, [
      { roles: auth, runtimePassword: password() },
      { roles: ledger, runtimePassword: password() },
    ]);
    for (const roles of [auth, ledger]) {
      await applyGrants(database.db, roles, "single");
      await migrateAsOwner(database.db, roles, join(root, roles.service));
      await applyGrants(database.db, roles, "single");
    }
  });

  afterAll(async () => {
    await database?.dispose();
    if (testServerUrl && auth) {
      const server = await openDatabase(testServerUrl, { maxConnections: 1 });
      await dropRoles(server.db, [auth, ledger]);
      await server.close();
    }
  });

  test("migrations run as the owner: it owns the schema, the tables and the bookkeeping", async () => {
    const owners = rowsOf<{ schema: string; owner: string }>(
      await database.db.execute(
        sql.raw(
          `select nspname as schema, pg_get_userbyid(nspowner) as owner from pg_namespace where nspname in ('auth', 'auth_migrations', 'ledger') order by 1`,
        ),
      ),
    );
    expect(owners).toEqual([
      { schema: "auth", owner: auth.owner },
      { schema: "auth_migrations", owner: auth.owner },
      { schema: "ledger", owner: ledger.owner },
    ]);
    const tableOwners = rowsOf<{ owner: string }>(
      await database.db.execute(sql.raw(`select distinct tableowner as owner from pg_tables where schemaname = 'auth'`)),
    );
    expect(tableOwners).toEqual([{ owner: auth.owner }]);
  });

  test("the owner cannot log in; the runtime role can, without inheriting anything", async () => {
    const flags = rowsOf<{ rolname: string; rolcanlogin: boolean; rolinherit: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
      await database.db.execute(
        sql.raw(
          `select rolname, rolcanlogin, rolinherit, rolcreaterole, rolcreatedb from pg_roles where rolname in ('${auth.owner}', '${auth.runtime}') order by 1`,
        ),
      ),
    );
    expect(flags).toEqual([
      { rolname: auth.runtime, rolcanlogin: true, rolinherit: false, rolcreaterole: false, rolcreatedb: false },
      { rolname: auth.owner, rolcanlogin: false, rolinherit: true, rolcreaterole: false, rolcreatedb: false },
    ]);
  });

  test("the runtime role reads and writes its own tables, including through sequences", async () => {
    await asRole(
      database.db,
      auth.runtime,
      `insert into auth.users (id, email, name, password_hash) values ('0190d6a8-0000-7000-8000-000000000001', 'a@example.com', 'A', 'x')`,
    );
    expect(await asRole(database.db, auth.runtime, "select count(*)::int as n from auth.users")).toEqual([{ n: 0 }]);
    expect(await asRole(database.db, auth.runtime, "update auth.users set name = 'B'")).toEqual([]);
    expect(await asRole(database.db, auth.runtime, "delete from auth.outbox")).toEqual([]);
    expect(await asRole(database.db, ledger.runtime, "insert into ledger.entries (amount_minor) values (100) returning id")).toEqual([{ id: 1 }]);
  });

  test("the runtime role cannot touch another service's schema", async () => {
    expect(await failure(asRole(database.db, auth.runtime, "select * from ledger.entries"))).toMatch(/permission denied for schema ledger/);
    expect(await failure(asRole(database.db, ledger.runtime, "select * from auth.users"))).toMatch(/permission denied for schema auth/);
    expect(
      await failure(asRole(database.db, ledger.runtime, "insert into auth.outbox (id, source, type, detail) values (gen_random_uuid(), 'x', 'y', '{}')")),
    ).toMatch(/permission denied/);
  });

  test("the runtime role cannot change the schema or read the migrations bookkeeping", async () => {
    expect(await failure(asRole(database.db, auth.runtime, "create table auth.extra (id int)"))).toMatch(/permission denied for schema auth/);
    expect(await failure(asRole(database.db, auth.runtime, "drop table auth.users"))).toMatch(/must be owner/);
    expect(await failure(asRole(database.db, auth.runtime, "alter table auth.users add column x int"))).toMatch(/must be owner/);
    expect(await failure(asRole(database.db, auth.runtime, "truncate auth.users"))).toMatch(/permission denied/);
    expect(await failure(asRole(database.db, auth.runtime, "select * from auth_migrations.applied"))).toMatch(/permission denied for schema auth_migrations/);
    expect(await failure(asRole(database.db, auth.runtime, "create schema rogue"))).toMatch(/permission denied/);
    expect(await failure(asRole(database.db, auth.runtime, "create table public.rogue (id int)"))).toMatch(/permission denied for schema public/);
  });

  test("tables a later migration adds are granted to the runtime role by default privileges", async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`set local role "${ledger.owner}"`));
      await tx.execute(sql.raw(`create table ledger.later (id serial primary key, note text)`));
    });
    expect(await asRole(database.db, ledger.runtime, "insert into ledger.later (note) values ('x') returning id")).toEqual([{ id: 1 }]);
    expect(await failure(asRole(database.db, auth.runtime, "select * from ledger.later"))).toMatch(/permission denied/);
  });

  test("running everything again changes nothing and succeeds", async () => {
    await ensureRoles(database.db, [
      { roles: auth, runtimePassword: password() },
      { roles: ledger, runtimePassword: password() },
    ]);
    for (const roles of [auth, ledger]) {
      expect(await migrateAsOwner(database.db, roles, join(root, roles.service))).toEqual({ applied: [] });
      await applyGrants(database.db, roles, "single");
    }
    expect(await asRole(database.db, auth.runtime, "select count(*)::int as n from auth.users")).toEqual([{ n: 0 }]);
  });
});
