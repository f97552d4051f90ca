import { sql } from "drizzle-orm";
import { pgSchema } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { type Queryable, rowsOf } from "../db/index";
import { createTestDatabase, type TestDatabase } from "../testing/database";
import { eventRetention, pruneEvents } from "./retention";
import { inboxTable, outboxTable } from "./tables";

const schema = pgSchema("ret");
const outbox = outboxTable(schema);
const inbox = inboxTable(schema);
const tables = { outbox, inbox };

let database: TestDatabase;
let db: Queryable;

const HOUR_MS = 60 * 60_000;
const DAY_MS = 24 * HOUR_MS;

beforeAll(async () => {
  database = await createTestDatabase([]);
  db = database.db;
  for (const statement of [
    `create schema "ret"`,
    `create table "ret"."outbox" ("id" uuid primary key, "source" text not null, "type" text not null, "detail" jsonb not null,
      "created_at" timestamptz not null default now(), "published_at" timestamptz, "attempts" integer not null default 0, "last_error" text)`,
    `create index "outbox_unpublished_idx" on "ret"."outbox" ("created_at") where "published_at" is null`,
    `create index "outbox_published_idx" on "ret"."outbox" ("published_at") where "published_at" is not null`,
    `create table "ret"."inbox" ("subscriber" text not null, "event_id" uuid not null, "processed_at" timestamptz default now() not null,
      primary key ("subscriber", "event_id"))`,
    `create index "inbox_processed_idx" on "ret"."inbox" ("processed_at")`,
  ]) {
    await db.execute(sql.raw(statement));
  }
});
afterAll(() => database?.dispose());
beforeEach(async () => {
  await db.execute(sql`truncate "ret"."outbox", "ret"."inbox"`);
});

const ago = (ms: number) => sql`now() - ${`${ms} milliseconds`}::interval`;

/** `count` outbox rows written `ageMs` ago; published then too unless `published` is false. */
async function outboxRows(count: number, ageMs: number, published = true) {
  await db.execute(sql`insert into ${outbox} ("id", "source", "type", "detail", "created_at", "published_at")
    select gen_random_uuid(), 'enclave.test', 'test.happened', '{}'::jsonb, ${ago(ageMs)}, ${published ? ago(ageMs) : sql`null`}
    from generate_series(1, ${count}::int)`);
}

async function inboxRows(count: number, ageMs: number) {
  await db.execute(sql`insert into ${inbox} ("subscriber", "event_id", "processed_at")
    select 'on-something', gen_random_uuid(), ${ago(ageMs)} from generate_series(1, ${count}::int)`);
}

async function counts(): Promise<{ published: number; unpublished: number; inbox: number }> {
  const [row] = rowsOf<{ published: number; unpublished: number; inbox: number }>(
    await db.execute(sql`select
      (select count(*)::int from ${outbox} where "published_at" is not null) as "published",
      (select count(*)::int from ${outbox} where "published_at" is null) as "unpublished",
      (select count(*)::int from ${inbox}) as "inbox"`),
  );
  if (!row) throw new Error("count query returned no row");
  return row;
}

describe("event retention", () => {
  test("the inbox outlives every redelivery: 24 h of bus retries plus 14 days in a dead-letter queue", () => {
    expect(eventRetention.inboxMs).toBeGreaterThan(14 * DAY_MS + 24 * HOUR_MS);
    expect(eventRetention.publishedOutboxMs).toBe(7 * DAY_MS);
  });

  test("deletes published outbox rows past 7 days and inbox rows past 30; keeps young and unpublished rows", async () => {
    await outboxRows(3, 8 * DAY_MS);
    await outboxRows(2, 6 * DAY_MS);
    await outboxRows(4, 60 * DAY_MS, false);
    await outboxRows(1, 0, false);
    await inboxRows(5, 31 * DAY_MS);
    await inboxRows(2, 29 * DAY_MS);
    await inboxRows(1, 0);

    expect(await pruneEvents(db, tables)).toEqual({ outbox: 3, inbox: 5, capped: false });
    expect(await counts()).toEqual({ published: 2, unpublished: 5, inbox: 3 });
    expect(await pruneEvents(db, tables)).toEqual({ outbox: 0, inbox: 0, capped: false });
  });

  test("a service without an inbox has only its outbox pruned", async () => {
    await outboxRows(2, 8 * DAY_MS);
    await inboxRows(2, 31 * DAY_MS);
    expect(await pruneEvents(db, { outbox })).toEqual({ outbox: 2, inbox: 0, capped: false });
    expect(await counts()).toMatchObject({ inbox: 2 });
  });

  test("deletes in batches and stops at the per-run cap; the next run takes the rest", async () => {
    await outboxRows(25, 10 * DAY_MS);
    await inboxRows(7, 40 * DAY_MS);
    expect(await pruneEvents(db, tables, { batchSize: 5, maxBatches: 3 })).toEqual({ outbox: 15, inbox: 7, capped: true });
    expect(await counts()).toEqual({ published: 10, unpublished: 0, inbox: 0 });
    expect(await pruneEvents(db, tables, { batchSize: 5, maxBatches: 3 })).toEqual({ outbox: 10, inbox: 0, capped: false });
    expect(await counts()).toEqual({ published: 0, unpublished: 0, inbox: 0 });
  });

  test("the tables stay bounded under steady traffic", async () => {
    // Every simulated step: every row ages by `step`, `perStep` new events are published and
    // consumed, and the hourly job runs. 45 simulated days, past both windows.
    const step = 6 * HOUR_MS;
    const perStep = 10;
    const steps = (45 * DAY_MS) / step;
    let peak = { published: 0, inbox: 0 };
    for (let i = 0; i < steps; i++) {
      await db.execute(sql`update ${outbox} set "created_at" = "created_at" - ${`${step} milliseconds`}::interval,
        "published_at" = "published_at" - ${`${step} milliseconds`}::interval`);
      await db.execute(sql`update ${inbox} set "processed_at" = "processed_at" - ${`${step} milliseconds`}::interval`);
      await outboxRows(perStep, 0);
      await inboxRows(perStep, 0);
      await pruneEvents(db, tables);
      const now = await counts();
      peak = { published: Math.max(peak.published, now.published), inbox: Math.max(peak.inbox, now.inbox) };
    }
    // A row is kept while younger than its window: at most window / step + 1 generations.
    const bound = (windowMs: number) => perStep * (windowMs / step + 1);
    expect(peak.published).toBeLessThanOrEqual(bound(eventRetention.publishedOutboxMs));
    expect(peak.inbox).toBeLessThanOrEqual(bound(eventRetention.inboxMs));
    // And the windows are actually kept, not over-pruned.
    expect(peak.published).toBeGreaterThanOrEqual(perStep * (eventRetention.publishedOutboxMs / step));
    expect(peak.inbox).toBeGreaterThanOrEqual(perStep * (eventRetention.inboxMs / step));
  });
});
