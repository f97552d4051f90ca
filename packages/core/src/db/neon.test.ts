import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq, sql } from "drizzle-orm";
import { integer, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEvent } from "../events/envelope";
import { consumeOnce } from "../events/inbox";
import { memoryBus } from "../events/memory";
import { relayEvents } from "../events/relay";
import { sweepOutbox } from "../events/sweeper";
import { inboxTable, outboxTable } from "../events/tables";
import { commitWithEvents } from "../events/write";
import { uuidv7 } from "../ids";
import { createTestDatabase, type TestDatabase, testServerUrl } from "../testing/database";
import { type NeonProxy, startNeonProxy } from "../testing/neon-proxy";
import { rowsOf } from "./index";
import { migrate } from "./migrate";

const schema = pgSchema("neonx");
const items = schema.table("items", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  status: text("status").notNull().default("pending"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});
const counters = schema.table("counters", { name: text("name").primaryKey(), value: integer("value").notNull() });
const outbox = outboxTable(schema);
const inbox = inboxTable(schema);
const source = "enclave.neonx";

const migration = [
  `CREATE SCHEMA "neonx";`,
  `CREATE TABLE "neonx"."items" ("id" uuid PRIMARY KEY NOT NULL, "name" text NOT NULL, "status" text DEFAULT 'pending' NOT NULL, "created_at" timestamp with time zone DEFAULT now() NOT NULL);`,
  `CREATE TABLE "neonx"."counters" ("name" text PRIMARY KEY NOT NULL, "value" integer NOT NULL);`,
  `CREATE TABLE "neonx"."outbox" ("id" uuid PRIMARY KEY NOT NULL, "source" text NOT NULL, "type" text NOT NULL, "detail" jsonb NOT NULL, "created_at" timestamp with time zone DEFAULT now() NOT NULL, "published_at" timestamp with time zone, "attempts" integer DEFAULT 0 NOT NULL, "last_error" text);`,
  `CREATE TABLE "neonx"."inbox" ("subscriber" text NOT NULL, "event_id" uuid NOT NULL, "processed_at" timestamp with time zone DEFAULT now() NOT NULL, CONSTRAINT "inbox_pk" PRIMARY KEY("subscriber","event_id"));`,
].join("\n--> statement-breakpoint\n");

const event = () => createEvent("user.registered", { userId: uuidv7(), email: "n@x.io", name: "N", role: "CUSTOMER" }, { correlationId: "neon", actor: null });

// The Neon serverless driver (WebSocket Pool) against the local PostgreSQL server, through the
// test proxy. It needs a server: without TEST_DATABASE_URL these tests are skipped.
describe.skipIf(!testServerUrl)("Neon driver through the WebSocket proxy (skipped: set TEST_DATABASE_URL to run it)", () => {
  let proxy: NeonProxy;
  let database: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), "enclave-neon-"));

  beforeAll(async () => {
    proxy = await startNeonProxy();
    database = await createTestDatabase([], { driver: "neon", neonWsProxy: proxy.wsProxy });
    await mkdir(join(dir, "meta"), { recursive: true });
    await writeFile(
      join(dir, "meta", "_journal.json"),
      JSON.stringify({ version: "7", dialect: "postgresql", entries: [{ idx: 0, version: "7", when: 1, tag: "0000_init", breakpoints: true }] }),
    );
    await writeFile(join(dir, "0000_init.sql"), migration);
  });
  afterAll(async () => {
    await database?.dispose();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("opens the database with the Neon driver, through the proxy", async () => {
    expect(database.kind).toBe("neon");
    expect(new URL(database.url).searchParams.get("driver")).toBe("neon");
    expect(await database.ping()).toBeGreaterThanOrEqual(0);
    // A statement outside a transaction goes over the HTTP endpoint: no WebSocket is opened for it.
    expect(proxy.connections).toBe(0);
    expect(proxy.refused).toEqual([]);
  });

  test("runs migrations once", async () => {
    expect((await migrate(database.db, "neonx", dir)).applied).toEqual(["0000_init"]);
    expect((await migrate(database.db, "neonx", dir)).applied).toEqual([]);
  });

  test("interactive transactions commit, roll back and nest", async () => {
    const kept = uuidv7();
    const dropped = uuidv7();
    await database.db.transaction(async (tx) => {
      await tx.insert(items).values({ id: kept, name: "kept" });
      await tx
        .transaction(async (inner) => {
          await inner.insert(items).values({ id: dropped, name: "savepoint" });
          throw new Error("roll back the savepoint");
        })
        .catch(() => undefined);
    });
    await database.db
      .transaction(async (tx) => {
        await tx.insert(items).values({ id: uuidv7(), name: "never" });
        throw new Error("roll back");
      })
      .catch(() => undefined);
    const names = (await database.db.select().from(items)).map((r) => r.name);
    expect(names).toEqual(["kept"]);
  });

  test("commitWithEvents is one round trip, and the relay marks the events sent", async () => {
    const id = uuidv7();
    const events = [event()];
    const before = database.stats.queries;
    const rows = await commitWithEvents(database.db, {
      outbox,
      source,
      table: items,
      change: database.db.insert(items).values({ id, name: "evented" }).returning(),
      events,
    });
    expect(database.stats.queries - before).toBe(1);
    expect(rows).toEqual([{ id, name: "evented", status: "pending", createdAt: expect.any(Date) }]);
    const bus = memoryBus();
    expect(await relayEvents(database.db, { outbox, source, bus }, events)).toEqual({ published: 1, failed: 0 });
    const [row] = await database.db.select().from(outbox).where(eq(outbox.id, events[0]!.id));
    expect(row?.detail).toEqual(events[0]);
    expect(row?.publishedAt).toBeInstanceOf(Date);

    const unchanged = await commitWithEvents(database.db, {
      outbox,
      source,
      table: items,
      change: database.db
        .update(items)
        .set({ status: "done" })
        .where(and(eq(items.id, id), eq(items.status, "nope")))
        .returning(),
      events: [event()],
    });
    expect(unchanged).toEqual([]);
    expect(await database.db.select().from(outbox)).toHaveLength(1);
  });

  test("consumeOnce applies once under duplicate and concurrent delivery", async () => {
    const eventId = uuidv7();
    const effect = async (tx: Parameters<Parameters<typeof database.db.transaction>[0]>[0]) => {
      await tx
        .insert(counters)
        .values({ name: "n", value: 1 })
        .onConflictDoUpdate({ target: counters.name, set: { value: sql`${counters.value} + 1` } });
    };
    const results = await Promise.all(Array.from({ length: 4 }, () => consumeOnce(database.db, inbox, "neon-sub", eventId, effect)));
    expect(results.sort()).toEqual(["applied", "duplicate", "duplicate", "duplicate"]);
    expect(await consumeOnce(database.db, inbox, "neon-sub", eventId, effect)).toBe("duplicate");
    const [counter] = rowsOf<{ value: number }>(await database.db.execute(sql`select value from "neonx"."counters" where name = 'n'`));
    expect(counter?.value).toBe(1);
  });

  test("sweepOutbox publishes rows left behind", async () => {
    const left = event();
    await database.db.execute(
      sql`insert into "neonx"."outbox" (id, source, type, detail, created_at) values (${left.id}, ${source}, ${left.type}, ${JSON.stringify(left)}::jsonb, now() - interval '1 minute')`,
    );
    const bus = memoryBus();
    expect(await sweepOutbox(database.db, { outbox, bus })).toEqual({ published: 1, failed: 0 });
    expect(bus.entries.map((e) => e.detail.id)).toEqual([left.id]);
  });
});
