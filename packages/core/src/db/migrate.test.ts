import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createTestDatabase, type TestDatabase, testServerUrl } from "../testing/database";
import { type Db, openDatabase, rowsOf } from "./index";
import { bookkeepingSchema, MigrationError, migrate, readMigrations } from "./migrate";

interface FakeMigration {
  tag: string;
  sql: string;
  when?: number;
}

const root = mkdtempSync(join(tmpdir(), "enclave-migrate-"));
let folders = 0;

/** A migrations folder in drizzle-kit's format: meta/_journal.json plus one .sql file per entry. */
async function migrationsFolder(migrations: FakeMigration[], dir = join(root, `m${folders++}`)): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, "meta"), { recursive: true });
  const entries = migrations.map((m, idx) => ({ idx, version: "7", when: m.when ?? 1_790_000_000_000 + idx * 1000, tag: m.tag, breakpoints: true }));
  await writeFile(join(dir, "meta", "_journal.json"), JSON.stringify({ version: "7", dialect: "postgresql", entries }, null, 2));
  for (const m of migrations) await writeFile(join(dir, `${m.tag}.sql`), m.sql);
  return dir;
}

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
