import { sql } from "drizzle-orm";
import { pgSchema, text, uuid } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError } from "./config";
import type { ServiceContext } from "./context";
import { createEvent, type EventEnvelope, UnknownEventError } from "./events/envelope";
import { memoryBus } from "./events/memory";
import { serviceEvents } from "./events/publisher";
import { outboxTable } from "./events/tables";
import { changed } from "./events/write";
import { uuidv7 } from "./ids";
import { jobLambdas, selectJob } from "./job-handler";
import { cron, type Delivery, defineJobs, eventHandler, patternOf, subscribe } from "./jobs";
import { configureLog } from "./log";
import { createTestDatabase, type TestDatabase } from "./testing/database";

const schema = pgSchema("auth");
const users = schema.table("users", { id: uuid("id").primaryKey(), name: text("name").notNull() });
const outbox = outboxTable(schema);
let database: TestDatabase;
const bus = memoryBus();
let context: ServiceContext;

beforeAll(async () => {
  configureLog({ level: "error" });
  database = await createTestDatabase([]);
  await database.db.execute(sql.raw(`create schema "auth"`));
  await database.db.execute(sql.raw(`create table "auth"."users" ("id" uuid primary key, "name" text not null)`));
  await database.db.execute(
    sql.raw(`create table "auth"."outbox" ("id" uuid primary key, "source" text not null, "type" text not null, "detail" jsonb not null,
      "created_at" timestamptz not null default now(), "published_at" timestamptz, "attempts" integer not null default 0, "last_error" text)`),
  );
  context = {
    app: "enclave",
    service: "auth",
    stage: "test",
    database: async () => database,
    bus,
    events: serviceEvents("auth", "enclave.auth", outbox, bus),
    verifier: { verify: async () => ({ kind: "service", service: "x" }) },
  };
});
afterAll(() => database?.dispose());

const registered = (userId = uuidv7()) =>
  createEvent("user.registered", { userId, email: `${userId}@x.io`, name: "N", role: "CUSTOMER" }, { correlationId: "req", actor: null });

describe("subscriptions", () => {
  test("a subscription to catalog types matches their producers' source and their names", () => {
    expect(patternOf(["user.registered", "payment.created"])).toEqual({
      source: ["enclave.auth", "enclave.payments"],
      "detail-type": ["user.registered", "payment.created"],
    });
    const declared = subscribe({ description: "d", on: ["user.registered"], handle: async () => {} });
    expect(declared.pattern).toEqual({ source: ["enclave.auth"], "detail-type": ["user.registered"] });
  });

  test("the handler gets the parsed event and its subscription's name; what does not parse never reaches it", async () => {
    const seen: [string, Delivery][] = [];
    const declared = subscribe({
      description: "d",
      on: ["user.registered"],
      handle: async (_ctx: ServiceContext, event, delivery) => {
        seen.push([event.data.email, delivery]);
      },
    });
    const handler = eventHandler("on-user", declared, context);
    const event = registered();
    await handler(event, { attempt: 2 });
    expect(seen).toEqual([[event.data.email, { attempt: 2, subscription: "on-user" }]]);
    await expect(handler({ ...event, version: 9 }, { attempt: 1 })).rejects.toBeInstanceOf(UnknownEventError);
    await expect(handler({ ...event, type: "user.role_changed" } as EventEnvelope, { attempt: 1 })).rejects.toBeInstanceOf(UnknownEventError);
    expect(seen).toHaveLength(1);
  });
});

describe("defineJobs", () => {
  const tick = cron({ description: "d", schedule: "rate(1 minute)", run: async () => "ticked" });

  test("a service that publishes events gets the kernel's sweeper and retention; one that publishes none does not", () => {
    expect(Object.keys(defineJobs("auth", { tick }))).toEqual(["tick", "outbox-sweeper", "event-retention"]);
    expect(defineJobs("auth")["event-retention"]).toMatchObject({ kind: "cron", schedule: "rate(1 hour)" });
    expect(Object.keys(defineJobs("reports", { tick }))).toEqual(["tick"]);
  });

  test("job names are kebab-case, and the sweeper's name is the kernel's", () => {
    expect(() => defineJobs("reports", { Tick: tick })).toThrow(/job name "Tick" must be kebab-case/);
    expect(() => defineJobs("auth", { "outbox-sweeper": tick })).toThrow(/kernel's job name/);
    expect(() => defineJobs("auth", { "event-retention": tick })).toThrow(/"event-retention" is the kernel's job name/);
  });

  test("a job that is not declared is a compile error, not a runtime lookup", () => {
    const jobs = defineJobs("reports", { tick });
    // @ts-expect-error `tock` is not one of the declared jobs
    expect(jobs.tock).toBeUndefined();
    expect(jobs.tick.schedule).toBe("rate(1 minute)");
  });

  test("the sweeper publishes what a crashed request left in the outbox", async () => {
    const event = registered();
    await database.db.execute(sql`insert into ${outbox} ("id", "source", "type", "detail", "created_at")
      values (${event.id}::uuid, 'enclave.auth', ${event.type}, ${JSON.stringify(event)}::jsonb, now() - interval '1 minute')`);
    const sweeper = defineJobs("auth")["outbox-sweeper"]!;
    expect(await sweeper.run(context)).toEqual({ published: 1, failed: 0 });
    expect(bus.entries.map((e) => e.detail.id)).toContain(event.id);
  });
});

describe("a service's events", () => {
  test("commit writes the change and its events in one statement, then publishes them", async () => {
    const id = uuidv7();
    const event = registered(id);
    const before = bus.entries.length;
    const rows = await context.events.commit(database.db, {
      table: users,
      change: database.db.insert(users).values({ id, name: "Ada" }).returning(),
      also: [sql`update ${users} set "name" = 'Ada L.' where "id" in (select "id" from ${changed})`],
      events: [event],
    });
    expect(rows).toEqual([{ id, name: "Ada" }]);
    expect(bus.entries.slice(before).map((e) => [e.source, e.detail.id])).toEqual([["enclave.auth", event.id]]);
    const [row] = await database.db.select().from(outbox).where(sql`${outbox.id} = ${event.id}::uuid`);
    expect(row?.publishedAt).toBeInstanceOf(Date);
  });

  test("a change that touched no row writes and publishes no event", async () => {
    const before = bus.entries.length;
    const rows = await context.events.commit(database.db, {
      table: users,
      change: database.db.update(users).set({ name: "x" }).where(sql`false`).returning(),
      events: [registered()],
    });
    expect(rows).toEqual([]);
    expect(bus.entries.length).toBe(before);
  });

  test("a service cannot publish another service's event type", async () => {
    const other = createEvent(
      "payment.created",
      { paymentId: uuidv7(), senderId: uuidv7(), recipientId: uuidv7(), amount: "1.00", currency: "USD", status: "pending" },
      { correlationId: "c", actor: null },
    );
    await expect(
      context.events.commit(database.db, { table: users, change: database.db.insert(users).values({ id: uuidv7(), name: "B" }).returning(), events: [other] }),
    ).rejects.toThrow(/auth cannot publish payment.created: the event catalog gives it to payments/);
  });
});

describe("job functions", () => {
  const jobs = defineJobs("reports", {
    tick: cron({ description: "d", schedule: "rate(1 minute)", run: async (ctx: ServiceContext) => `ticked ${ctx.stage}` }),
  });
  const lambdas = jobLambdas("reports", jobs, async () => context);

  test("JOB_NAME picks the job a deployed function runs", async () => {
    await expect(selectJob("reports", lambdas, async () => "tick")({} as never)).resolves.toBe("ticked test");
  });

  test("a missing or unknown JOB_NAME fails with the service, the variable and the jobs there are", async () => {
    const missing = await selectJob("reports", lambdas, async () => undefined)({} as never).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as ConfigError).problems).toEqual(["reports: JOB_NAME is required (one of tick)"]);
    const unknown = await selectJob("reports", lambdas, async () => "tock")({} as never).catch((error: unknown) => error);
    expect((unknown as ConfigError).problems).toEqual(['reports: JOB_NAME "tock" is none of tick']);
  });
});
