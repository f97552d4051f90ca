import { and, eq, sql } from "drizzle-orm";
import { pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { type Queryable, rowsOf } from "../db/index";
import { uuidv7 } from "../ids";
import { createTestDatabase, type TestDatabase, testServerUrl } from "../testing/database";
import type { BusEntry, EventBus, PublishResult } from "./bus";
import { createEvent, type EventEnvelope } from "./envelope";
import { memoryBus } from "./memory";
import { relayEvents } from "./relay";
import { sweepOutbox } from "./sweeper";
import { outboxTable } from "./tables";
import { commitWithEvents, outboxInsert } from "./write";

const schema = pgSchema("evt");
const items = schema.table("items", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull(),
  status: text("status").notNull().default("pending"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});
const outbox = outboxTable(schema);
const source = "enclave.evt";

const ddl = [
  `create schema "evt"`,
  `create table "evt"."items" ("id" uuid primary key, "name" text not null, "status" text not null default 'pending', "created_at" timestamptz not null default now())`,
  `create table "evt"."notes" ("id" uuid primary key, "item_id" uuid not null, "note" text not null)`,
  `create table "evt"."outbox" ("id" uuid primary key not null, "source" text not null, "type" text not null, "detail" jsonb not null,
     "created_at" timestamptz default now() not null, "published_at" timestamptz, "attempts" integer default 0 not null, "last_error" text)`,
  `create index "outbox_unpublished_idx" on "evt"."outbox" ("created_at") where "published_at" is null`,
];

let database: TestDatabase;
let db: Queryable;

const userEvent = (userId = uuidv7()) =>
  createEvent("user.registered", { userId, email: `${userId}@x.io`, name: "N", role: "CUSTOMER" }, { correlationId: "req-1", actor: null });

async function outboxRows() {
  return db.select().from(outbox).orderBy(outbox.createdAt, outbox.id);
}

async function counted<T>(run: () => Promise<T>): Promise<{ result: T; queries: number }> {
  const before = database.stats.queries;
  const result = await run();
  return { result, queries: database.stats.queries - before };
}

/** Old enough for the sweeper (the relay of the request that wrote them is presumed dead). */
async function insertStale(events: EventEnvelope[], ageSeconds = 60) {
  for (const event of events) {
    await db.execute(
      sql`insert into "evt"."outbox" (id, source, type, detail, created_at) values (${event.id}, ${source}, ${event.type}, ${JSON.stringify(event)}::jsonb, now() - make_interval(secs => ${ageSeconds}))`,
    );
  }
}

beforeAll(async () => {
  database = await createTestDatabase([]);
  db = database.db;
  for (const statement of ddl) await db.execute(sql.raw(statement));
});
afterAll(() => database?.dispose());
beforeEach(async () => {
  await db.execute(sql`truncate "evt"."items", "evt"."notes", "evt"."outbox"`);
});

describe("commitWithEvents", () => {
  test("writes the change and its events in one statement and returns the mapped rows", async () => {
    const id = uuidv7();
    const events = [userEvent(), userEvent()];
    const { result, queries } = await counted(() =>
      commitWithEvents(db, { outbox, source, table: items, change: db.insert(items).values({ id, name: "first" }).returning(), events }),
    );
    expect(queries).toBe(1);
    expect(result).toEqual([{ id, name: "first", status: "pending", createdAt: expect.any(Date) }]);
    expect(Math.abs((result[0]?.createdAt.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    const rows = await outboxRows();
    expect(rows.map((r) => r.id).sort()).toEqual(events.map((e) => e.id).sort());
    for (const row of rows) {
      const event = events.find((e) => e.id === row.id);
      expect(row).toMatchObject({ source, type: "user.registered", publishedAt: null, attempts: 0, lastError: null });
      expect(row.detail).toEqual(event);
    }
  });

  test("a conditional change that affects no row writes no event", async () => {
    const id = uuidv7();
    await db.insert(items).values({ id, name: "x" });
    const complete = () =>
      commitWithEvents(db, {
        outbox,
        source,
        table: items,
        change: db
          .update(items)
          .set({ status: "done" })
          .where(and(eq(items.id, id), eq(items.status, "pending")))
          .returning(),
        events: [userEvent()],
      });
    const first = await counted(complete);
    expect(first.queries).toBe(1);
    expect(first.result.map((r) => r.status)).toEqual(["done"]);
    expect(await outboxRows()).toHaveLength(1);
    const second = await counted(complete);
    expect(second.queries).toBe(1);
    expect(second.result).toEqual([]);
    expect(await outboxRows()).toHaveLength(1);
  });

  test("`also` statements see the change and commit with it", async () => {
    const id = uuidv7();
    const noteId = uuidv7();
    const { queries } = await counted(() =>
      commitWithEvents(db, {
        outbox,
        source,
        table: items,
        change: db.insert(items).values({ id, name: "with note" }).returning(),
        also: [sql`insert into "evt"."notes" (id, item_id, note) select ${noteId}::uuid, id, 'created ' || name from "change"`],
        events: [userEvent()],
      }),
    );
    expect(queries).toBe(1);
    const notes = rowsOf(await db.execute(sql`select id, item_id, note from "evt"."notes"`));
    expect(notes).toEqual([{ id: noteId, item_id: id, note: "created with note" }]);
  });

  test("a failing `also` statement rolls back the change and the events", async () => {
    const id = uuidv7();
    const error = await commitWithEvents(db, {
      outbox,
      source,
      table: items,
      change: db.insert(items).values({ id, name: "doomed" }).returning(),
      also: [sql`insert into "evt"."notes" (id, item_id, note) select ${uuidv7()}::uuid, id, null from "change"`],
      events: [userEvent()],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(await db.select().from(items)).toEqual([]);
    expect(await outboxRows()).toEqual([]);
  });

  test("a failing change writes no event", async () => {
    const id = uuidv7();
    await db.insert(items).values({ id, name: "taken" });
    await expect(
      commitWithEvents(db, { outbox, source, table: items, change: db.insert(items).values({ id, name: "again" }).returning(), events: [userEvent()] }),
    ).rejects.toThrow();
    expect(await outboxRows()).toEqual([]);
  });

  test("without events it is just the change", async () => {
    const id = uuidv7();
    const rows = await commitWithEvents(db, { outbox, source, table: items, change: db.insert(items).values({ id, name: "quiet" }).returning(), events: [] });
    expect(rows.map((r) => r.id)).toEqual([id]);
    expect(await outboxRows()).toEqual([]);
  });

  test("inside a transaction the change and its events roll back with it", async () => {
    const id = uuidv7();
    await db
      .transaction(async (tx) => {
        await commitWithEvents(tx, { outbox, source, table: items, change: tx.insert(items).values({ id, name: "tx" }).returning(), events: [userEvent()] });
        await tx.execute(outboxInsert(outbox, source, [userEvent()]));
        expect(await tx.select().from(outbox)).toHaveLength(2);
        throw new Error("abort");
      })
      .catch(() => undefined);
    expect(await db.select().from(items)).toEqual([]);
    expect(await outboxRows()).toEqual([]);
  });
});

/** A bus whose behaviour each test sets. */
function scriptedBus(publish: (entries: BusEntry[]) => Promise<PublishResult>): EventBus & { calls: BusEntry[][] } {
  const bus = {
    calls: [] as BusEntry[][],
    async publish(entries: BusEntry[]) {
      bus.calls.push(entries);
      return publish(entries);
    },
  };
  return bus;
}

describe("relayEvents", () => {
  async function written(count: number): Promise<EventEnvelope[]> {
    const events = Array.from({ length: count }, () => userEvent());
    await commitWithEvents(db, { outbox, source, table: items, change: db.insert(items).values({ id: uuidv7(), name: "r" }).returning(), events });
    return events;
  }

  test("publishes to the bus and marks the rows sent in one round trip", async () => {
    const events = await written(3);
    const bus = memoryBus();
    const { result, queries } = await counted(() => relayEvents(db, { outbox, source, bus }, events));
    expect(result).toEqual({ published: 3, failed: 0 });
    expect(queries).toBe(1);
    expect(bus.entries).toEqual(events.map((detail) => ({ source, detailType: "user.registered", detail })));
    for (const row of await outboxRows()) expect(row.publishedAt).toBeInstanceOf(Date);
  });

  test("marks only what the bus accepted", async () => {
    const events = await written(3);
    const bus = scriptedBus(async () => ({ failed: [{ id: events[1]!.id, error: "ThrottlingException" }] }));
    expect(await relayEvents(db, { outbox, source, bus }, events)).toEqual({ published: 2, failed: 1 });
    const rows = await outboxRows();
    expect(rows.filter((r) => r.publishedAt === null).map((r) => r.id)).toEqual([events[1]!.id]);
  });

  test("never throws when the bus throws or is down; the rows stay for the sweeper", async () => {
    const events = await written(2);
    const throwing = scriptedBus(async () => {
      throw new Error("network down");
    });
    await expect(relayEvents(db, { outbox, source, bus: throwing }, events)).resolves.toEqual({ published: 0, failed: 2 });
    const down = memoryBus();
    down.down = true;
    await expect(relayEvents(db, { outbox, source, bus: down }, events)).resolves.toEqual({ published: 0, failed: 2 });
    expect((await outboxRows()).every((r) => r.publishedAt === null)).toBe(true);
  });

  test("never throws when marking the rows fails", async () => {
    const events = await written(1);
    const broken = {
      update() {
        throw new Error("database gone");
      },
    } as unknown as Queryable;
    await expect(relayEvents(broken, { outbox, source, bus: memoryBus() }, events)).resolves.toEqual({ published: 0, failed: 1 });
  });

  test("with no events it does nothing", async () => {
    const bus = scriptedBus(async () => ({ failed: [] }));
    const { result, queries } = await counted(() => relayEvents(db, { outbox, source, bus }, []));
    expect(result).toEqual({ published: 0, failed: 0 });
    expect(queries).toBe(0);
    expect(bus.calls).toEqual([]);
  });
});

describe("sweepOutbox", () => {
  test("publishes only rows older than the grace period, oldest first, and marks them", async () => {
    const stale = [userEvent(), userEvent()];
    await insertStale([stale[0]!], 120);
    await insertStale([stale[1]!], 60);
    const fresh = userEvent();
    await db.execute(outboxInsert(outbox, source, [fresh]));
    const bus = memoryBus();
    expect(await sweepOutbox(db, { outbox, bus }, { graceMs: 5_000 })).toEqual({ published: 2, failed: 0 });
    expect(bus.entries.map((e) => e.detail.id)).toEqual(stale.map((e) => e.id));
    expect(bus.entries[0]).toEqual({ source, detailType: "user.registered", detail: stale[0] });
    const rows = await outboxRows();
    expect(rows.find((r) => r.id === fresh.id)?.publishedAt).toBeNull();
    expect(
      rows
        .filter((r) => r.publishedAt !== null)
        .map((r) => r.id)
        .sort(),
    ).toEqual(stale.map((e) => e.id).sort());
    expect(await sweepOutbox(db, { outbox, bus }, { graceMs: 5_000 })).toEqual({ published: 0, failed: 0 });
    expect(bus.entries).toHaveLength(2);
  });

  test("publishes at most batchSize rows per run", async () => {
    await insertStale([userEvent(), userEvent(), userEvent()]);
    const bus = memoryBus();
    expect(await sweepOutbox(db, { outbox, bus }, { batchSize: 2 })).toEqual({ published: 2, failed: 0 });
    expect(await sweepOutbox(db, { outbox, bus }, { batchSize: 2 })).toEqual({ published: 1, failed: 0 });
  });

  test("counts attempts and keeps the last error of rows the bus refused, and retries them next time", async () => {
    const events = [userEvent(), userEvent()];
    await insertStale(events);
    const refusing = scriptedBus(async () => ({ failed: [{ id: events[0]!.id, error: "InternalFailure: try again" }] }));
    expect(await sweepOutbox(db, { outbox, bus: refusing })).toEqual({ published: 1, failed: 1 });
    let row = (await outboxRows()).find((r) => r.id === events[0]!.id);
    expect(row).toMatchObject({ publishedAt: null, attempts: 1, lastError: "InternalFailure: try again" });
    expect(await sweepOutbox(db, { outbox, bus: refusing })).toEqual({ published: 0, failed: 1 });
    row = (await outboxRows()).find((r) => r.id === events[0]!.id);
    expect(row?.attempts).toBe(2);
    const bus = memoryBus();
    expect(await sweepOutbox(db, { outbox, bus })).toEqual({ published: 1, failed: 0 });
    expect(bus.entries.map((e) => e.detail.id)).toEqual([events[0]!.id]);
  });

  test("a bus that throws is recorded as a failed attempt, not an exception", async () => {
    const events = [userEvent(), userEvent()];
    await insertStale(events);
    const throwing = scriptedBus(async () => {
      throw new Error("getaddrinfo ENOTFOUND events.us-east-1.amazonaws.com");
    });
    expect(await sweepOutbox(db, { outbox, bus: throwing })).toEqual({ published: 0, failed: 2 });
    for (const row of await outboxRows()) {
      expect(row.publishedAt).toBeNull();
      expect(row.attempts).toBe(1);
      expect(row.lastError).toMatch(/ENOTFOUND/);
    }
  });

  test("concurrent sweeps publish each row once", async () => {
    const events = Array.from({ length: 6 }, () => userEvent());
    await insertStale(events);
    const bus = memoryBus();
    const results = await Promise.all([1, 2, 3].map(() => sweepOutbox(db, { outbox, bus })));
    expect(results.reduce((n, r) => n + r.published, 0)).toBe(6);
    expect(bus.entries.map((e) => e.detail.id).sort()).toEqual(events.map((e) => e.id).sort());
  });

  test.runIf(testServerUrl)("a sweep skips rows another sweep has locked (PostgreSQL)", async () => {
    const events = Array.from({ length: 4 }, () => userEvent());
    await insertStale(events);
    let entered!: () => void;
    const inPublish = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = scriptedBus(async () => {
      entered();
      await gate;
      return { failed: [] };
    });
    const first = sweepOutbox(db, { outbox, bus: slow });
    await inPublish;
    // The first sweep holds every row (FOR UPDATE) while it publishes: the second finds nothing to do.
    const other = memoryBus();
    expect(await sweepOutbox(db, { outbox, bus: other })).toEqual({ published: 0, failed: 0 });
    expect(other.entries).toEqual([]);
    release();
    expect(await first).toEqual({ published: 4, failed: 0 });
    expect(
      slow.calls
        .flat()
        .map((e) => e.detail.id)
        .sort(),
    ).toEqual(events.map((e) => e.id).sort());
  });
});
