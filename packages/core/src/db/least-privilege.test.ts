/**
 * Least privilege on a real PostgreSQL server, in both topologies, with the services' own
 * migrations applied the way a deploy applies them (roles, grants, migrations as the owner,
 * grants again): each service's runtime role, logged in over the network as the functions log
 * in, reads and writes its own schema and nothing else, cannot change any schema, cannot become
 * the owner that migrations run as, and the admin role cannot change or remove audit rows.
 * PostgreSQL only: PGlite has one user and no logins, so without TEST_DATABASE_URL these are skipped.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { migrationsDir, testServerUrl } from "../testing/database";
import { type Database, openDatabase, rowsOf } from "./index";
import { applyGrants, dropRoles, ensureDatabase, ensureRoles, migrateAsOwner, type ServiceRoles, serviceRoles, type Topology } from "./roles";

const services = ["auth", "profile", "payments", "admin"] as const;
type Service = (typeof services)[number];

/** A URL of the test server as `role` (the server trusts local connections; the password is the role's own anyway). */
function urlAs(role: string, password: string, database: string): string {
  const url = new URL(testServerUrl as string);
  url.username = role;
  url.password = password;
  url.pathname = `/${database}`;
  return url.toString();
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

interface Deployed {
  roles: Record<Service, ServiceRoles>;
  passwords: Record<Service, string>;
  /** Each service's runtime role, logged in to its own database. */
  runtime: Record<Service, Database>;
  /** What a deploy does again on the next run. */
  redeploy(): Promise<void>;
  dispose(): Promise<void>;
}

/** A stage's databases, roles and grants, as functions/migrate.ts sets them up. */
async function deploy(topology: Topology): Promise<Deployed> {
  const prefix = `lp${randomBytes(3).toString("hex")}_`;
  const admin = await openDatabase(testServerUrl as string, { maxConnections: 1 });
  const shared = `${prefix}enclave`;
  const roles = Object.fromEntries(
    services.map((s) => [s, serviceRoles(s, { topology, prefix, ...(topology === "single" ? { database: shared } : {}) })]),
  ) as Record<Service, ServiceRoles>;
  const passwords = Object.fromEntries(services.map((s) => [s, randomBytes(24).toString("base64url")])) as Record<Service, string>;
  const databases = new Map<string, Database>();
  const databaseOf = async (r: ServiceRoles) => {
    let open = databases.get(r.database);
    if (!open) {
      await ensureDatabase(admin.db, r.database, topology === "per-service" ? r.owner : undefined);
      open = await openDatabase(urlAs(new URL(testServerUrl as string).username, new URL(testServerUrl as string).password, r.database), { maxConnections: 1 });
      databases.set(r.database, open);
    }
    return open;
  };
  const run = async () => {
    await ensureRoles(
      admin.db,
      services.map((s) => ({ roles: roles[s], runtimePassword: passwords[s] })),
    );
    for (const s of services) {
      const database = await databaseOf(roles[s]);
      if (topology === "single") await applyGrants(database.db, roles[s], topology);
      await migrateAsOwner(database.db, roles[s], migrationsDir(s));
      await applyGrants(database.db, roles[s], topology);
    }
  };
  await run();
  const runtime = {} as Record<Service, Database>;
  for (const s of services) runtime[s] = await openDatabase(urlAs(roles[s].runtime, passwords[s], roles[s].database), { maxConnections: 1 });
  return {
    roles,
    passwords,
    runtime,
    redeploy: run,
    async dispose() {
      await Promise.allSettled(Object.values(runtime).map((d) => d.close()));
      await Promise.allSettled([...databases.values()].map((d) => d.close()));
      for (const name of databases.keys()) await admin.db.execute(sql.raw(`drop database if exists "${name}" with (force)`));
      await dropRoles(admin.db, Object.values(roles));
      await admin.close();
    },
  };
}

const reason = testServerUrl ? "" : " (skipped: needs TEST_DATABASE_URL, a PostgreSQL server; PGlite has no roles to log in as)";

for (const topology of ["single", "per-service"] as const) {
  describe.skipIf(!testServerUrl)(`least privilege, ${topology} topology${reason}`, () => {
    let stage: Deployed;
    const as = (s: Service, statement: string) => stage.runtime[s].db.execute(sql.raw(statement)).then(rowsOf);

    beforeAll(async () => {
      stage = await deploy(topology);
    }, 120_000);
    afterAll(async () => {
      await stage?.dispose();
    });

    test("each runtime role reads, inserts, updates and deletes in its own schema", async () => {
      for (const s of services) {
        expect(await as(s, `select count(*)::int as n from ${s}.outbox`)).toEqual([{ n: 0 }]);
        await as(s, `insert into ${s}.outbox (id, source, type, detail) select gen_random_uuid(), 'x', 'y', '{}' where false`);
        await as(s, `update ${s}.outbox set attempts = attempts where false`);
        await as(s, `delete from ${s}.outbox where false`);
      }
      await as("payments", "select id, status from payments.payments limit 1");
      await as("admin", "update admin.system_config set value = value where false");
    });

    test("the payments role is refused auth's users, whichever way it tries", async () => {
      const message = await failure(as("payments", "select * from auth.users"));
      // One database: the schema is there and refused. A database per service: it is not even there.
      expect(message).toMatch(topology === "single" ? /permission denied for schema auth/ : /relation "auth\.users" does not exist/);
      expect(await failure(as("payments", "update auth.users set role = 'ADMIN'"))).toMatch(/permission denied|does not exist/);
      expect(await failure(as("profile", "select * from payments.payments"))).toMatch(/permission denied|does not exist/);
      expect(await failure(as("auth", "select * from admin.audit_logs"))).toMatch(/permission denied|does not exist/);
      if (topology === "per-service") {
        // Nor can it connect to auth's database at all.
        const r = stage.roles.payments;
        const intoAuth = await openDatabase(urlAs(r.runtime, stage.passwords.payments, stage.roles.auth.database), { maxConnections: 1 });
        try {
          expect(await failure(intoAuth.db.execute(sql`select 1`))).toMatch(/permission denied for database/);
        } finally {
          await intoAuth.close();
        }
      }
    });

    test("no runtime role can create, alter or drop tables, create schemas, or read the migrations bookkeeping", async () => {
      for (const s of services) {
        expect(await failure(as(s, `create table ${s}.extra (id int)`))).toMatch(new RegExp(`permission denied for schema ${s}`));
        expect(await failure(as(s, `alter table ${s}.outbox add column x int`))).toMatch(/must be owner/);
        expect(await failure(as(s, `drop table ${s}.outbox`))).toMatch(/must be owner/);
        expect(await failure(as(s, `alter schema ${s} rename to renamed`))).toMatch(/must be owner/);
        expect(await failure(as(s, `create schema rogue_${s}`))).toMatch(/permission denied for database/);
        expect(await failure(as(s, "create table public.rogue (id int)"))).toMatch(/permission denied for schema public/);
        expect(await failure(as(s, `select * from ${s}_migrations.applied`))).toMatch(/permission denied for schema/);
      }
    });

    test("the migration (owner) role is separate: it cannot log in, and no runtime role can become it", async () => {
      for (const s of services) {
        const r = stage.roles[s];
        expect(await failure(as(s, `set role "${r.owner}"`))).toMatch(/permission denied to set role/);
        const member = rowsOf<{ member: boolean }>(await stage.runtime[s].db.execute(sql`select pg_has_role(current_user, ${r.owner}, 'member') as member`));
        expect(member).toEqual([{ member: false }]);
        const asOwner = await openDatabase(urlAs(r.owner, stage.passwords[s], r.database), { maxConnections: 1 });
        try {
          expect(await failure(asOwner.db.execute(sql`select 1`))).toMatch(/is not permitted to log in/);
        } finally {
          await asOwner.close();
        }
      }
    });

    test("the admin role appends audit rows and reads them, but cannot update, delete or truncate them", async () => {
      const id = "0190d6a8-0000-7000-8000-0000000000a1";
      await as("admin", `insert into admin.audit_logs (id, action, resource_type, details, created_at) values ('${id}', 'test.appended', 'test', '{}', now())`);
      // What the audit consumer does with a redelivered event: needs INSERT only.
      await as("admin", `insert into admin.audit_logs (id, action, created_at) values ('${id}', 'test.again', now()) on conflict (id) do nothing`);
      expect(await as("admin", `select action from admin.audit_logs where id = '${id}'`)).toEqual([{ action: "test.appended" }]);
      expect(await failure(as("admin", `update admin.audit_logs set action = 'rewritten' where id = '${id}'`))).toMatch(
        /permission denied for table audit_logs/,
      );
      expect(await failure(as("admin", `delete from admin.audit_logs where id = '${id}'`))).toMatch(/permission denied for table audit_logs/);
      expect(await failure(as("admin", "truncate admin.audit_logs"))).toMatch(/permission denied for table audit_logs/);
      // A deploy grants DML on every table again; the audit log stays append-only after it.
      await stage.redeploy();
      expect(await failure(as("admin", `update admin.audit_logs set action = 'rewritten' where id = '${id}'`))).toMatch(
        /permission denied for table audit_logs/,
      );
      expect(await as("admin", `select action from admin.audit_logs where id = '${id}'`)).toEqual([{ action: "test.appended" }]);
    });
  });
}
