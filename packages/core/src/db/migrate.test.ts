import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, migrationsDir, type TestDatabase, testServerUrl } from "../testing/database";
import { type FakeMigration, writeMigrationsFolder } from "../testing/migrations";
import { type Db, openDatabase, rowsOf } from "./index";
import { bookkeepingSchema, MigrationError, migrate, noTransactionMarker, readMigrations } from "./migrate";

const root = mkdtempSync(join(tmpdir(), "enclave-migrate-"));
let folders = 0;

/** A migrations folder in drizzle-kit's format, in a new directory unless one is given. */
const migrationsFolder = (migrations: FakeMigration[], dir = join(root, `m${folders++}`)) => writeMigrationsFolder(dir, migrations);

/** Generated-style SQL: statements separated by drizzle-kit's breakpoint marker. */
const statements = (...parts: string[]) => parts.join("\n--> statement-breakpoint\n");

const init = (svc: string) => ({
  tag: "0000_init",
  sql: statements(`CREATE SCHEMA "${svc}";`, `CREATE TABLE "${svc}"."things" ("id" integer PRIMARY KEY NOT NULL, "name" text NOT NULL);`),
});
const addColumn = (svc: string) => ({ tag: "0001_add_note", sql: `ALTER TABLE "${svc}"."things" ADD COLUMN "note" text;` });
const addTable = (svc: string) => ({ tag: "0002_add_labels", sql: `CREATE TABLE "${svc}"."labels" ("id" integer PRIMARY KEY NOT NULL);` });

let database: TestDatabase;
let db: Db;

async function tablesOf(schema: string): Promise<string[]> {
  const result = await db.execute(sql`select table_name from information_schema.tables where table_schema = ${schema} order by table_name`);
  return rowsOf<{ table_name: string }>(result).map((r) => r.table_name);
}

async function columnsOf(schema: string, table: string): Promise<string[]> {
  const result = await db.execute(
    sql`select column_name from information_schema.columns where table_schema = ${schema} and table_name = ${table} order by ordinal_position`,
  );
  return rowsOf<{ column_name: string }>(result).map((r) => r.column_name);
}

async function recorded(service: string): Promise<{ idx: number; tag: string; hash: string }[]> {
  const exists = await tablesOf(bookkeepingSchema(service));
  if (!exists.includes("applied")) return [];
  return rowsOf<{ idx: number; tag: string; hash: string }>(
    await db.execute(sql.raw(`select idx, tag, hash from "${service}_migrations"."applied" order by idx`)),
  );
}

beforeAll(async () => {
  database = await createTestDatabase([]);
  db = database.db;
});
afterAll(async () => {
  await database?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe("migrate", () => {
  test("applies every file of a fresh service in journal order and records each one with its hash", async () => {
    const dir = await migrationsFolder([init("fresh"), addColumn("fresh")]);
    const result = await migrate(db, "fresh", dir);
    expect(result.applied).toEqual(["0000_init", "0001_add_note"]);
    expect(await tablesOf("fresh")).toEqual(["things"]);
    expect(await columnsOf("fresh", "things")).toEqual(["id", "name", "note"]);
    const rows = await recorded("fresh");
    const files = await readMigrations("fresh", dir);
    expect(rows).toEqual(files.map((f) => ({ idx: f.idx, tag: f.tag, hash: f.hash })));
    expect(rows[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  test("a second run applies nothing; a later file is applied on its own", async () => {
    const dir = await migrationsFolder([init("rerun")]);
    expect((await migrate(db, "rerun", dir)).applied).toEqual(["0000_init"]);
    expect((await migrate(db, "rerun", dir)).applied).toEqual([]);
    await migrationsFolder([init("rerun"), addColumn("rerun")], dir);
    expect((await migrate(db, "rerun", dir)).applied).toEqual(["0001_add_note"]);
    expect((await migrate(db, "rerun", dir)).applied).toEqual([]);
    expect((await recorded("rerun")).map((r) => r.tag)).toEqual(["0000_init", "0001_add_note"]);
  });

  test("two services in one database each keep their own bookkeeping and both get their tables", async () => {
    // The second service's migration is OLDER than the first's: drizzle's shared table skips it silently.
    const a = await migrationsFolder([{ ...init("svc_a"), when: 1_800_000_000_000 }]);
    const b = await migrationsFolder([{ ...init("svc_b"), when: 1_700_000_000_000 }]);
    expect((await migrate(db, "svc_a", a)).applied).toEqual(["0000_init"]);
    expect((await migrate(db, "svc_b", b)).applied).toEqual(["0000_init"]);
    expect(await tablesOf("svc_a")).toEqual(["things"]);
    expect(await tablesOf("svc_b")).toEqual(["things"]);
    expect(await tablesOf("svc_a_migrations")).toEqual(["applied"]);
    expect(await tablesOf("svc_b_migrations")).toEqual(["applied"]);
    expect(await recorded("svc_a")).toHaveLength(1);
    expect(await recorded("svc_b")).toHaveLength(1);
    expect(await tablesOf("drizzle")).toEqual([]);
  });

  test("a migration edited after it was applied is an error, and nothing else is applied", async () => {
    const dir = await migrationsFolder([init("edited")]);
    await migrate(db, "edited", dir);
    await migrationsFolder([{ ...init("edited"), sql: `${init("edited").sql}\n-- a harmless comment` }, addColumn("edited")], dir);
    const error = await migrate(db, "edited", dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/\[edited\] 0000_init was edited after it was applied/);
    expect(await columnsOf("edited", "things")).toEqual(["id", "name"]);
    expect((await recorded("edited")).map((r) => r.tag)).toEqual(["0000_init"]);
  });

  test("a reordered journal is an error", async () => {
    const first = { tag: "0000_first", sql: `CREATE SCHEMA "reorder";` };
    const second = { tag: "0001_second", sql: `CREATE TABLE "reorder"."t" ("id" integer);` };
    const dir = await migrationsFolder([first, second]);
    await migrate(db, "reorder", dir);
    // An older branch merged later: its migration now sits before one that was already applied.
    const merged = { tag: "0001_merged", sql: `CREATE TABLE "reorder"."merged" ("id" integer);` };
    await migrationsFolder([first, merged, { ...second, tag: "0002_second" }], dir);
    await expect(migrate(db, "reorder", dir)).rejects.toThrow(/migration 1 is 0001_merged in the journal but 0001_second was applied/);
    expect(await tablesOf("reorder")).toEqual(["t"]);
    // Two applied entries swapped in the journal.
    await migrationsFolder([second, first], dir);
    await expect(migrate(db, "reorder", dir)).rejects.toThrow(/migration 0 is 0001_second in the journal but 0000_first was applied/);
  });

  test("a renamed migration is an error", async () => {
    const dir = await migrationsFolder([init("renamed")]);
    await migrate(db, "renamed", dir);
    await migrationsFolder([{ ...init("renamed"), tag: "0000_initial" }], dir);
    await expect(migrate(db, "renamed", dir)).rejects.toThrow(MigrationError);
    await expect(migrate(db, "renamed", dir)).rejects.toThrow(/0000_initial in the journal but 0000_init was applied/);
  });

  test("a journal that no longer lists an applied migration is an error", async () => {
    const dir = await migrationsFolder([init("shrunk"), addColumn("shrunk")]);
    await migrate(db, "shrunk", dir);
    await migrationsFolder([init("shrunk")], dir);
    await expect(migrate(db, "shrunk", dir)).rejects.toThrow(/0001_add_note applied but the journal no longer lists it/);
  });

  test("a journal entry without its file is an error before anything runs", async () => {
    const dir = await migrationsFolder([init("missing"), addColumn("missing")]);
    await rm(join(dir, "0001_add_note.sql"));
    const error = await migrate(db, "missing", dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/journal lists 0001_add_note but 0001_add_note.sql is missing/);
    expect(await tablesOf("missing")).toEqual([]);
    expect(await recorded("missing")).toEqual([]);
  });

  test("a journal with a gap or a duplicate index is an error", async () => {
    const dir = await migrationsFolder([init("gap")]);
    const journal = {
      version: "7",
      dialect: "postgresql",
      entries: [
        { idx: 0, when: 1, tag: "0000_init" },
        { idx: 2, when: 2, tag: "0002_x" },
      ],
    };
    await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify(journal));
    await expect(migrate(db, "gap", dir)).rejects.toThrow(/journal is not contiguous: expected entry 1, found 2/);
    journal.entries[1] = { idx: 0, when: 2, tag: "0000_again" };
    await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify(journal));
    await expect(migrate(db, "gap", dir)).rejects.toThrow(/journal is not contiguous/);
  });

  test("an unreadable journal is an error naming the file", async () => {
    await expect(migrate(db, "nowhere", join(root, "does-not-exist"))).rejects.toThrow(/\[nowhere\] cannot read .*_journal\.json/);
    const dir = await migrationsFolder([init("badjson")]);
    await writeFile(join(dir, "meta", "_journal.json"), "{ not json");
    await expect(migrate(db, "badjson", dir)).rejects.toThrow(MigrationError);
  });

  test("a checkout with CRLF line endings is the same migration, not an edited one", async () => {
    const dir = await migrationsFolder([init("crlf"), addColumn("crlf")]);
    await migrate(db, "crlf", dir);
    await writeFile(join(dir, "0000_init.sql"), init("crlf").sql.replace(/\n/g, "\r\n"));
    expect((await migrate(db, "crlf", dir)).applied).toEqual([]);
    const files = await readMigrations("crlf", dir);
    expect(files[0]?.statements).toHaveLength(2);
  });

  test("a journal without entries, or with a tag that is not a file name, is an error", async () => {
    const dir = await migrationsFolder([init("shape")]);
    for (const journal of [{}, { entries: "0000_init" }, { entries: [{ idx: 0, when: 1 }] }, { entries: [{ idx: "0", when: 1, tag: "0000_init" }] }]) {
      await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify(journal));
      const error = await migrate(db, "shape", dir).catch((e: unknown) => e);
      expect(error, JSON.stringify(journal)).toBeInstanceOf(MigrationError);
    }
    for (const tag of ["../../secrets", "sub/0000_init", ""]) {
      await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify({ entries: [{ idx: 0, when: 1, tag }] }));
      await expect(migrate(db, "shape", dir), tag).rejects.toThrow(MigrationError);
    }
    expect(await recorded("shape")).toEqual([]);
  });

  test("a failing statement rolls back every pending file of the run: nothing applied, nothing recorded", async () => {
    const dir = await migrationsFolder([init("atomic")]);
    await migrate(db, "atomic", dir);
    await migrationsFolder(
      [
        init("atomic"),
        addColumn("atomic"),
        addTable("atomic"),
        { tag: "0003_broken", sql: statements(`INSERT INTO "atomic"."labels" ("id") VALUES (1);`, `ALTER TABLE "atomic"."nope" ADD COLUMN "x" text;`) },
      ],
      dir,
    );
    const error = await migrate(db, "atomic", dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/\[atomic\] 0003_broken failed: .*nope/);
    expect(await tablesOf("atomic")).toEqual(["things"]);
    expect(await columnsOf("atomic", "things")).toEqual(["id", "name"]);
    expect((await recorded("atomic")).map((r) => r.tag)).toEqual(["0000_init"]);

    // Fixed: the next run applies all three.
    await writeFile(join(dir, "0003_broken.sql"), `INSERT INTO "atomic"."labels" ("id") VALUES (1);`);
    expect((await migrate(db, "atomic", dir)).applied).toEqual(["0001_add_note", "0002_add_labels", "0003_broken"]);
  });

  test("a service name that is not a lower-case identifier is refused", async () => {
    const dir = await migrationsFolder([init("x")]);
    await expect(migrate(db, 'x"; drop schema public; --', dir)).rejects.toThrow(/service name must be a lower-case identifier/);
    await expect(migrate(db, "Auth", dir)).rejects.toThrow(MigrationError);
  });

  test("concurrent runs apply each migration once (advisory lock)", async () => {
    const dir = await migrationsFolder([
      init("race"),
      addColumn("race"),
      { tag: "0002_slow", sql: statements(`SELECT pg_sleep(0.2);`, `CREATE TABLE "race"."labels" ("id" integer PRIMARY KEY NOT NULL);`) },
    ]);
    // Separate connections, as two deploys would have.
    const others = testServerUrl ? await Promise.all([1, 2, 3].map(() => openDatabase(database.url, { maxConnections: 1 }))) : [];
    try {
      const dbs = testServerUrl ? others.map((o) => o.db) : [db, db, db, db];
      const results = await Promise.all(dbs.map((d) => migrate(d, "race", dir)));
      const applied = results.map((r) => r.applied);
      expect(applied.filter((a) => a.length > 0)).toEqual([["0000_init", "0001_add_note", "0002_slow"]]);
      expect(applied.filter((a) => a.length === 0)).toHaveLength(dbs.length - 1);
      expect((await recorded("race")).map((r) => r.tag)).toEqual(["0000_init", "0001_add_note", "0002_slow"]);
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
  });
});

/** `CREATE INDEX CONCURRENTLY` in a file marked to run outside a transaction. */
const concurrentIndex = (tag: string, statement: string) => ({ tag, sql: `${noTransactionMarker}\n${statement}` });

async function indexState(schema: string, name: string): Promise<{ valid: boolean } | undefined> {
  const rows = rowsOf<{ valid: boolean }>(
    await db.execute(sql`select i.indisvalid as valid from pg_index i where i.indexrelid = to_regclass(${`"${schema}"."${name}"`})`),
  );
  return rows[0];
}

/** A connection of its own, for a transaction the test keeps open. */
async function session(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  return client;
}

/** The backend a single-connection database runs its statements on. */
async function backendOf(d: Db): Promise<number> {
  return rowsOf<{ pid: number }>(await d.execute(sql`select pg_backend_pid() as pid`))[0]!.pid;
}

/** Whether the backend has asked for a migration lock (and, as the caller checks, not got it). */
async function triedMigrationLock(pid: number): Promise<boolean> {
  const rows = rowsOf<{ query: string }>(await db.execute(sql`select query from pg_stat_activity where pid = ${pid}`));
  return /pg_try_advisory(_xact)?_lock/.test(rows[0]?.query ?? "");
}

/** The phase of a concurrent index build on the table, while one is in progress. */
async function buildInProgress(table: string): Promise<string | undefined> {
  const rows = rowsOf<{ phase: string }>(await db.execute(sql`select phase from pg_stat_progress_create_index where relid = to_regclass(${table})`));
  return rows[0]?.phase;
}

describe("migrations marked to run outside a transaction", () => {
  test("are applied statement by statement, recorded with their hash, and not applied again; the next file follows", async () => {
    const index = concurrentIndex("0001_name_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "things_name_idx" ON "notx"."things" USING btree ("name");`);
    const dir = await migrationsFolder([init("notx"), index, addTable("notx")]);
    // CREATE INDEX CONCURRENTLY refuses to run in a transaction: applying it proves it ran outside one.
    expect((await migrate(db, "notx", dir)).applied).toEqual(["0000_init", "0001_name_idx", "0002_add_labels"]);
    expect(await indexState("notx", "things_name_idx")).toEqual({ valid: true });
    expect(await tablesOf("notx")).toEqual(["labels", "things"]);
    const files = await readMigrations("notx", dir);
    expect(files.map((f) => f.transactional)).toEqual([true, false, true]);
    expect(await recorded("notx")).toEqual(files.map((f) => ({ idx: f.idx, tag: f.tag, hash: f.hash })));
    expect((await migrate(db, "notx", dir)).applied).toEqual([]);
    expect(await recorded("notx")).toHaveLength(3);
  });

  test("without the marker the same file fails inside the transaction and nothing of the run is applied", async () => {
    const dir = await migrationsFolder([
      init("unmarked"),
      addColumn("unmarked"),
      { tag: "0002_name_idx", sql: `CREATE INDEX CONCURRENTLY IF NOT EXISTS "things_name_idx" ON "unmarked"."things" USING btree ("name");` },
    ]);
    await expect(migrate(db, "unmarked", dir)).rejects.toThrow(/\[unmarked\] 0002_name_idx failed: .*transaction block/);
    expect(await tablesOf("unmarked")).toEqual([]);
    expect(await recorded("unmarked")).toEqual([]);
  });

  test("the marker is honoured only as the first line, and the files before a marked one commit first", async () => {
    const late = {
      tag: "0001_late",
      sql: statements("SELECT 1;", `${noTransactionMarker}\nCREATE INDEX CONCURRENTLY "things_late_idx" ON "late"."things" ("name");`),
    };
    const dir = await migrationsFolder([init("late"), late]);
    await expect(migrate(db, "late", dir)).rejects.toThrow(/0001_late failed: .*transaction block/);
    expect((await readMigrations("late", dir)).map((f) => f.transactional)).toEqual([true, true]);
    expect((await recorded("late")).map((r) => r.tag)).toEqual([]);

    // A marked file that fails: what came before it in the run stays applied and recorded.
    const broken = concurrentIndex("0001_broken_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "x_idx" ON "late"."nope" ("name");`);
    await migrationsFolder([init("late"), broken], dir);
    await expect(migrate(db, "late", dir)).rejects.toThrow(/\[late\] 0001_broken_idx failed: .*nope/);
    expect((await recorded("late")).map((r) => r.tag)).toEqual(["0000_init"]);
    expect(await tablesOf("late")).toEqual(["things"]);
  });

  test("inside a caller's transaction a marked file is refused with a clear error", async () => {
    const dir = await migrationsFolder([
      init("nested"),
      concurrentIndex("0001_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "n_idx" ON "nested"."things" ("name");`),
    ]);
    const error = await db.transaction((tx) => migrate(tx as unknown as Db, "nested", dir)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/0001_idx is marked "-- enclave:no-transaction" but migrations are running inside a transaction/);
  });

  test("a concurrent build that fails leaves an invalid index; the next run drops it, builds it again and records it once", async () => {
    const unique = concurrentIndex(
      "0001_name_key",
      `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "things_name_key" ON "invalid"."things" USING btree ("name");`,
    );
    const dir = await migrationsFolder([init("invalid")]);
    await migrate(db, "invalid", dir);
    await db.execute(sql.raw(`insert into "invalid"."things" values (1, 'same'), (2, 'same'), (3, 'other')`));
    await migrationsFolder([init("invalid"), unique], dir);
    await expect(migrate(db, "invalid", dir)).rejects.toThrow(/\[invalid\] 0001_name_key failed: .*(duplicate|unique)/i);
    // What PostgreSQL leaves behind: the index exists, marked invalid, and the migration is not recorded.
    expect(await indexState("invalid", "things_name_key")).toEqual({ valid: false });
    expect((await recorded("invalid")).map((r) => r.tag)).toEqual(["0000_init"]);
    // Running again before the data is fixed fails the same way; it never records the invalid index.
    await expect(migrate(db, "invalid", dir)).rejects.toThrow(/0001_name_key failed/);
    expect((await recorded("invalid")).map((r) => r.tag)).toEqual(["0000_init"]);

    await db.execute(sql.raw(`delete from "invalid"."things" where id = 2`));
    expect((await migrate(db, "invalid", dir)).applied).toEqual(["0001_name_key"]);
    expect(await indexState("invalid", "things_name_key")).toEqual({ valid: true });
    expect((await migrate(db, "invalid", dir)).applied).toEqual([]);
    expect((await recorded("invalid")).map((r) => r.tag)).toEqual(["0000_init", "0001_name_key"]);
    await expect(db.execute(sql.raw(`insert into "invalid"."things" values (4, 'same')`))).rejects.toThrow();
  });

  test.skipIf(!testServerUrl)("writes proceed while a concurrent build is in progress; an ordinary build blocks them (PostgreSQL)", async () => {
    const base = {
      tag: "0000_init",
      sql: statements(
        `CREATE SCHEMA "busy";`,
        `CREATE TABLE "busy"."events" ("id" bigint PRIMARY KEY NOT NULL, "kind" text NOT NULL);`,
        `INSERT INTO "busy"."events" SELECT g, 'kind-' || (g % 1000) FROM generate_series(1, 100000) g;`,
      ),
    };
    const dir = await migrationsFolder([base]);
    await migrate(db, "busy", dir);
    const [holder, writer] = [await session(), await session()];
    try {
      // A transaction still writing when the build starts: a concurrent build waits for it to end,
      // which keeps the build in progress for as long as the test needs.
      await holder.query("begin");
      await holder.query(`insert into "busy"."events" values (-1, 'held')`);
      await migrationsFolder(
        [base, concurrentIndex("0001_kind_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "events_kind_idx" ON "busy"."events" USING btree ("kind");`)],
        dir,
      );
      let settled = false;
      const building = migrate(db, "busy", dir).finally(() => (settled = true));
      await vi.waitFor(async () => expect(await buildInProgress('"busy"."events"')).toBeDefined(), { timeout: 30_000, interval: 20 });
      await writer.query(`insert into "busy"."events" values (-2, 'written during the build')`);
      expect(await buildInProgress('"busy"."events"')).toBeDefined();
      expect(settled).toBe(false);
      await holder.query("commit");
      expect((await building).applied).toEqual(["0001_kind_idx"]);
      expect(await indexState("busy", "events_kind_idx")).toEqual({ valid: true });

      // The same wait with an ordinary CREATE INDEX: the writer queues behind the build's lock.
      await holder.query("begin");
      await holder.query(`insert into "busy"."events" values (-3, 'held')`);
      await migrationsFolder(
        [
          base,
          concurrentIndex("0001_kind_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "events_kind_idx" ON "busy"."events" USING btree ("kind");`),
          { tag: "0002_plain_idx", sql: `CREATE INDEX "events_plain_idx" ON "busy"."events" USING btree ("id", "kind");` },
        ],
        dir,
      );
      const plain = migrate(db, "busy", dir);
      plain.catch(() => {});
      await vi.waitFor(async () => expect(await buildWaiting()).toBe(true), { timeout: 30_000, interval: 20 });
      const writerPid = ((await writer.query("select pg_backend_pid() as pid")).rows[0] as { pid: number }).pid;
      const blockedWrite = writer.query(`insert into "busy"."events" values (-4, 'blocked')`);
      await vi.waitFor(
        async () => {
          const rows = rowsOf<{ wait: string | null }>(await db.execute(sql`select wait_event_type as wait from pg_stat_activity where pid = ${writerPid}`));
          expect(rows[0]?.wait).toBe("Lock");
        },
        { timeout: 30_000, interval: 20 },
      );
      await holder.query("commit");
      await blockedWrite;
      expect((await plain).applied).toEqual(["0002_plain_idx"]);
    } finally {
      await holder.end();
      await writer.end();
    }

    /** Whether the ordinary build is waiting for its table lock. */
    async function buildWaiting(): Promise<boolean> {
      const rows = rowsOf<{ n: number }>(
        await db.execute(
          sql`select count(*)::int as n from pg_locks where locktype = 'relation' and relation = to_regclass('"busy"."events"') and mode = 'ShareLock' and not granted`,
        ),
      );
      return (rows[0]?.n ?? 0) > 0;
    }
  });
});

describe("migrating as another role", () => {
  test.skipIf(!testServerUrl)(
    "what the migrations create, a concurrent index included, belongs to that role; the connection is given back without it (PostgreSQL)",
    async () => {
      const owner = `enclave_test_owner_${Math.random().toString(36).slice(2, 10)}`;
      const dir = await migrationsFolder([
        init("owned"),
        concurrentIndex(
          "0001_name_idx",
          statements(
            `CREATE INDEX CONCURRENTLY IF NOT EXISTS "things_name_idx" ON "owned"."things" USING btree ("name");`,
            `CREATE TABLE IF NOT EXISTS "owned"."notes" ("id" integer PRIMARY KEY NOT NULL);`,
          ),
        ),
        addTable("owned"),
      ]);
      const single = await openDatabase(database.url, { maxConnections: 1 });
      try {
        await db.execute(sql.raw(`create role "${owner}" nologin; grant create on database "${new URL(database.url).pathname.slice(1)}" to "${owner}"`));
        expect((await migrate(single.db, "owned", dir, { role: owner })).applied).toEqual(["0000_init", "0001_name_idx", "0002_add_labels"]);
        const owners = rowsOf<{ name: string; owner: string }>(
          await db.execute(sql`select c.relname as name, pg_get_userbyid(c.relowner) as owner from pg_class c
          join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('owned', 'owned_migrations') and c.relkind in ('r', 'i') order by 1`),
        );
        expect(owners.filter((o) => o.owner !== owner)).toEqual([]);
        expect(owners.map((o) => o.name)).toEqual(expect.arrayContaining(["applied", "labels", "notes", "things", "things_name_idx"]));
        const [session] = rowsOf<{ user: string }>(await single.db.execute(sql`select current_user as user`));
        expect(session?.user).not.toBe(owner);
      } finally {
        await single.close();
        await db.execute(sql.raw(`drop schema if exists "owned" cascade; drop schema if exists "owned_migrations" cascade`));
        await db.execute(sql.raw(`drop owned by "${owner}"; drop role if exists "${owner}"`));
      }
    },
  );
});

describe("two migrators at once", () => {
  test.skipIf(!testServerUrl)("one applies while the other waits for the lock; both succeed and each migration is applied once (PostgreSQL)", async () => {
    await db.execute(sql.raw(`create schema "pair_gate"; create table "pair_gate"."open" (id integer)`));
    const files = [
      init("pair"),
      // Holds the first migrator inside its transaction until the test opens the gate (polling a
      // table rather than waiting on a lock, which the runner's lock_timeout would cut short).
      {
        tag: "0001_gate",
        sql: `DO $$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM "pair_gate"."open") LOOP PERFORM pg_sleep(0.02); END LOOP; END $$;`,
      },
      { ...addColumn("pair"), tag: "0002_add_note" },
    ];
    const dir = await migrationsFolder(files);
    const [first, second] = await Promise.all([1, 2].map(() => openDatabase(database.url, { maxConnections: 1 })));
    try {
      const firstPid = await backendOf(first!.db);
      const a = migrate(first!.db, "pair", dir);
      await vi.waitFor(
        async () => {
          const rows = rowsOf<{ query: string }>(await db.execute(sql`select query from pg_stat_activity where pid = ${firstPid} and state = 'active'`));
          expect(rows[0]?.query).toContain("pair_gate");
        },
        { timeout: 30_000, interval: 20 },
      );
      const secondPid = await backendOf(second!.db);
      let secondDone = false;
      const b = migrate(second!.db, "pair", dir).finally(() => (secondDone = true));
      await vi.waitFor(async () => expect(await triedMigrationLock(secondPid)).toBe(true), { timeout: 30_000, interval: 20 });
      // The second migrator asked for the lock, did not get it, and waits: nothing recorded yet.
      expect(secondDone).toBe(false);
      expect(await recorded("pair")).toEqual([]);
      await db.execute(sql.raw(`insert into "pair_gate"."open" values (1)`));
      expect(await Promise.all([a, b])).toEqual([{ applied: ["0000_init", "0001_gate", "0002_add_note"] }, { applied: [] }]);
      expect((await recorded("pair")).map((r) => r.tag)).toEqual(["0000_init", "0001_gate", "0002_add_note"]);
      expect(await columnsOf("pair", "things")).toEqual(["id", "name", "note"]);
    } finally {
      await Promise.all([first?.close(), second?.close()]);
    }
  });

  test.skipIf(!testServerUrl)(
    "a concurrent index build: the second migrator waits for the first, then finds it applied (PostgreSQL)",
    async () => {
      const base = init("pairidx");
      const dir = await migrationsFolder([base]);
      await migrate(db, "pairidx", dir);
      await migrationsFolder(
        [base, concurrentIndex("0001_name_idx", `CREATE INDEX CONCURRENTLY IF NOT EXISTS "things_name_idx" ON "pairidx"."things" USING btree ("name");`)],
        dir,
      );
      const holder = await session();
      const [first, second] = await Promise.all([1, 2].map(() => openDatabase(database.url, { maxConnections: 1 })));
      try {
        // A writer still open when the build starts keeps the build in progress.
        await holder.query("begin");
        await holder.query(`insert into "pairidx"."things" values (1, 'held')`);
        const a = migrate(first!.db, "pairidx", dir);
        await vi.waitFor(async () => expect(await buildInProgress('"pairidx"."things"')).toBeDefined(), { timeout: 30_000, interval: 20 });
        const secondPid = await backendOf(second!.db);
        let secondDone = false;
        const b = migrate(second!.db, "pairidx", dir).finally(() => (secondDone = true));
        await vi.waitFor(async () => expect(await triedMigrationLock(secondPid)).toBe(true), { timeout: 30_000, interval: 20 });
        expect(secondDone).toBe(false);
        expect((await recorded("pairidx")).map((r) => r.tag)).toEqual(["0000_init"]);
        await holder.query("commit");
        expect(await Promise.all([a, b])).toEqual([{ applied: ["0001_name_idx"] }, { applied: [] }]);
        expect((await recorded("pairidx")).map((r) => r.tag)).toEqual(["0000_init", "0001_name_idx"]);
        expect(await indexState("pairidx", "things_name_idx")).toEqual({ valid: true });
      } finally {
        await holder.end();
        await Promise.all([first?.close(), second?.close()]);
      }
      // Its two waits allow 30 s each on a loaded machine: the test as a whole needs room for both.
    },
    120_000,
  );

  test("the repository's migrations of every service, by two migrators on an empty database: each applied once", async () => {
    const services = ["auth", "profile", "payments", "admin"];
    const target = await createTestDatabase([]);
    const others = testServerUrl ? await Promise.all([1, 2].map(() => openDatabase(target.url, { maxConnections: 2 }))) : [];
    try {
      const migrators = testServerUrl ? others.map((o) => o.db) : [target.db, target.db];
      const results = await Promise.all(
        migrators.map(async (d) => Promise.all(services.map(async (service) => (await migrate(d, service, migrationsDir(service))).applied))),
      );
      for (const [i, service] of services.entries()) {
        const journal = (await readMigrations(service, migrationsDir(service))).map((f) => f.tag);
        expect(
          [results[0]![i]!, results[1]![i]!].sort((x, y) => y.length - x.length),
          service,
        ).toEqual([journal, []]);
        const rows = rowsOf<{ tag: string }>(await target.db.execute(sql.raw(`select tag from "${service}_migrations"."applied" order by idx`)));
        expect(rows.map((r) => r.tag)).toEqual(journal);
      }
    } finally {
      await Promise.all(others.map((o) => o.close()));
      await target.dispose();
    }
  });
});

describe("the repository's committed migrations", () => {
  test("a database they were applied to refuses an edited or a reordered copy of them", async () => {
    const target = await createTestDatabase(["payments"]);
    const copy = join(root, "committed-payments");
    try {
      cpSync(migrationsDir("payments"), copy, { recursive: true });
      expect((await migrate(target.db, "payments", copy)).applied).toEqual([]);

      const file = join(copy, "0001_schedule_shape_strict.sql");
      const original = readFileSync(file, "utf8");
      await writeFile(file, `${original}\n-- reworded`);
      await expect(migrate(target.db, "payments", copy)).rejects.toThrow(/\[payments\] 0001_schedule_shape_strict was edited after it was applied/);
      await writeFile(file, original);

      const journalFile = join(copy, "meta", "_journal.json");
      const journal = JSON.parse(readFileSync(journalFile, "utf8")) as { entries: { idx: number; tag: string }[] };
      const [first, second] = [journal.entries[1]!.tag, journal.entries[2]!.tag];
      journal.entries[1]!.tag = second;
      journal.entries[2]!.tag = first;
      await writeFile(journalFile, JSON.stringify(journal));
      await expect(migrate(target.db, "payments", copy)).rejects.toThrow(/migration 1 is .* in the journal but 0001_schedule_shape_strict was applied/);
    } finally {
      await target.dispose();
    }
  });
});

describe("npm run db:lint (squawk)", () => {
  const repository = resolve(migrationsDir("auth"), "../..");
  const squawk = (paths: string[]) =>
    spawnSync(join(repository, "node_modules/.bin/squawk"), ["--config", ".squawk.toml", "--reporter", "gcc", ...paths], { cwd: repository, encoding: "utf8" });

  test("passes on every committed migration", () => {
    const result = squawk(["migrations/*/*.sql"]);
    expect([result.status, result.stdout]).toEqual([0, ""]);
  });

  test("fails on a migration that blocks writes; a concurrent build must be safe to run again", async () => {
    const dir = join(root, "lint");
    await mkdir(dir, { recursive: true });
    const cases = {
      "blocking.sql": { sql: `CREATE INDEX "users_name_idx" ON "auth"."users" USING btree ("name");`, rule: "require-concurrent-index-creation" },
      "not_rerunnable.sql": {
        sql: `${noTransactionMarker}\nCREATE INDEX CONCURRENTLY "users_name_idx" ON "auth"."users" USING btree ("name");`,
        rule: "prefer-robust-stmts",
      },
      "full_scan.sql": {
        sql: `ALTER TABLE "auth"."users" ADD CONSTRAINT "users_name_check" CHECK (char_length("name") > 0);`,
        rule: "constraint-missing-not-valid",
      },
    };
    for (const [file, { sql: text, rule }] of Object.entries(cases)) {
      await writeFile(join(dir, file), text);
      const result = squawk([join(dir, file)]);
      expect([file, result.status, result.stdout]).toEqual([file, 1, expect.stringContaining(rule)]);
    }
    const fine = join(dir, "fine.sql");
    await writeFile(fine, `${noTransactionMarker}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "users_name_idx" ON "auth"."users" USING btree ("name");`);
    expect(squawk([fine]).status).toBe(0);
  });
});
