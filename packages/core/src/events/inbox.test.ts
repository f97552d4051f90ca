import { eq, sql } from "drizzle-orm";
import { integer, pgSchema, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { type Queryable, rowsOf } from "../db/index";
import { uuidv7 } from "../ids";
import { createTestDatabase, type TestDatabase } from "../testing/database";
import { consumeOnce, inboxClaim } from "./inbox";
import { inboxTable } from "./tables";

const schema = pgSchema("inb");
const inbox = inboxTable(schema);
const counters = schema.table("counters", { name: text("name").primaryKey(), value: integer("value").notNull() });

let database: TestDatabase;
let db: Queryable;

/** The effect under test: one increment per applied event. */
const increment = (name: string) => async (tx: Queryable) => {
  await tx
    .insert(counters)
    .values({ name, value: 1 })
    .onConflictDoUpdate({ target: counters.name, set: { value: sql`${counters.value} + 1` } });
};

async function counter(name: string): Promise<number> {
  const [row] = await db.select().from(counters).where(eq(counters.name, name));
  return row?.value ?? 0;
}

async function inboxIds(subscriber: string): Promise<string[]> {
  return (await db.select().from(inbox).where(eq(inbox.subscriber, subscriber))).map((r) => r.eventId);
}

beforeAll(async () => {
  database = await createTestDatabase([]);
  db = database.db;
  for (const statement of [
    `create schema "inb"`,
    `create table "inb"."inbox" ("subscriber" text not null, "event_id" uuid not null, "processed_at" timestamptz default now() not null, primary key ("subscriber", "event_id"))`,
    `create table "inb"."counters" ("name" text primary key, "value" integer not null)`,
  ]) {
    await db.execute(sql.raw(statement));
  }
});
afterAll(() => database?.dispose());
beforeEach(async () => {
  await db.execute(sql`truncate "inb"."inbox", "inb"."counters"`);
});

describe("consumeOnce", () => {
  test("applies an event once; a redelivery is a duplicate and runs nothing", async () => {
    const eventId = uuidv7();
    expect(await consumeOnce(db, inbox, "profile-creator", eventId, increment("a"))).toBe("applied");
    let ran = false;
    expect(
      await consumeOnce(db, inbox, "profile-creator", eventId, async () => {
        ran = true;
      }),
    ).toBe("duplicate");
    expect(ran).toBe(false);
    expect(await counter("a")).toBe(1);
    expect(await inboxIds("profile-creator")).toEqual([eventId]);
  });

  test("each subscriber applies the same event once", async () => {
    const eventId = uuidv7();
    expect(await consumeOnce(db, inbox, "one", eventId, increment("b"))).toBe("applied");
    expect(await consumeOnce(db, inbox, "two", eventId, increment("b"))).toBe("applied");
    expect(await consumeOnce(db, inbox, "two", eventId, increment("b"))).toBe("duplicate");
    expect(await counter("b")).toBe(2);
  });

  test("when the effect throws, neither the effect nor the inbox row is kept, so a retry applies it", async () => {
    const eventId = uuidv7();
    const failing = async (tx: Queryable) => {
      await increment("c")(tx);
      throw new Error("downstream failed");
    };
    await expect(consumeOnce(db, inbox, "sub", eventId, failing)).rejects.toThrow("downstream failed");
    expect(await counter("c")).toBe(0);
    expect(await inboxIds("sub")).toEqual([]);
    expect(await consumeOnce(db, inbox, "sub", eventId, increment("c"))).toBe("applied");
    expect(await counter("c")).toBe(1);
  });

  test("concurrent duplicate deliveries apply the effect once", async () => {
    const eventId = uuidv7();
    const results = await Promise.all(Array.from({ length: 6 }, () => consumeOnce(db, inbox, "sub", eventId, increment("d"))));
    expect(results.filter((r) => r === "applied")).toHaveLength(1);
    expect(results.filter((r) => r === "duplicate")).toHaveLength(5);
    expect(await counter("d")).toBe(1);
  });

  test("a delivery waiting on a concurrent one that fails applies the event itself", async () => {
    const eventId = uuidv7();
    let started!: () => void;
    const firstStarted = new Promise<void>((resolve) => (started = resolve));
    let fail!: () => void;
    const failNow = new Promise<void>((resolve) => (fail = resolve));
    const first = consumeOnce(db, inbox, "sub", eventId, async (tx) => {
      await increment("e")(tx);
      started();
      await failNow;
      throw new Error("first delivery failed");
    }).catch((e: Error) => e.message);
    await firstStarted;
    // The second delivery waits for the first one's inbox row (or, on PGlite, its transaction).
    const second = consumeOnce(db, inbox, "sub", eventId, increment("e"));
    fail();
    expect(await first).toBe("first delivery failed");
    expect(await second).toBe("applied");
    expect(await counter("e")).toBe(1);
    expect(await inboxIds("sub")).toEqual([eventId]);
  });

  test("an event id that is not a UUID is refused without applying anything", async () => {
    await expect(consumeOnce(db, inbox, "sub", "not-a-uuid", increment("f"))).rejects.toThrow();
    expect(await counter("f")).toBe(0);
  });
});

describe("inboxClaim", () => {
  /** The effect as one statement: the increment happens only where the claim recorded the event. */
  const consume = async (subscriber: string, eventId: string, name: string) => {
    const claim = inboxClaim(inbox, subscriber, eventId);
    const result = await db.execute(sql`
      with ${claim.cte}, "effect" as (
        insert into ${counters} ("name", "value") select ${name}, 1 where ${claim.first}
        on conflict ("name") do update set "value" = ${counters}."value" + 1
        returning 1)
      select count(*)::int as "applied" from "effect"`);
    return rowsOf<{ applied: number }>(result)[0]?.applied === 1 ? "applied" : "duplicate";
  };

  test("applies an event once in one statement; a redelivery changes nothing", async () => {
    const eventId = uuidv7();
    expect(await consume("claimer", eventId, "c")).toBe("applied");
    expect(await consume("claimer", eventId, "c")).toBe("duplicate");
    expect(await counter("c")).toBe(1);
    expect(await inboxIds("claimer")).toEqual([eventId]);
  });

  test("the same event for another subscriber is applied again", async () => {
    const eventId = uuidv7();
    expect(await consume("first", eventId, "d")).toBe("applied");
    expect(await consume("second", eventId, "d")).toBe("applied");
    expect(await counter("d")).toBe(2);
  });

  test("concurrent duplicates apply once", async () => {
    const eventId = uuidv7();
    const results = await Promise.all(Array.from({ length: 5 }, () => consume("racer", eventId, "e")));
    expect(results.filter((r) => r === "applied")).toHaveLength(1);
    expect(await counter("e")).toBe(1);
  });
});
