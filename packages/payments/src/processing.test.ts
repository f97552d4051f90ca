import { createEvent } from "@enclave/core";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { paymentsInbox, paymentsTable } from "./payments.sql";
import { addInterval, runDue } from "./processing";
import type { PaymentProvider } from "./provider";
import { call, createPaymentsHarness, type PaymentsHarness, processConsumer, type TestUser } from "./testing";

let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;
let n = 0;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
});
afterAll(() => h?.dispose());
beforeEach(async () => {
  // Every test starts with nothing left over for the cron.
  h.clock.offsetMs = 0;
  await h.deliverCreated();
  await h.database.db.execute(sql`update payments.payments set status = 'cancelled' where status in ('pending', 'processing')`);
  await h.database.db.execute(sql`update payments.payments set next_payment_id = id where type = 'recurring' and next_payment_id is null`);
});

const create = async (body: Record<string, unknown> = {}) => {
  const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "10.00", ...body }, alice.token, {
    "idempotency-key": `proc-${++n}`,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.payment as { id: string; scheduledFor: string | null; createdAt: string };
};
const get = async (id: string) => (await call(h.app, "GET", `/payments/${id}`, undefined, alice.token)).body.payment;
const statuses = async (id: string) =>
  (await call(h.app, "GET", `/payments/${id}/transactions`, undefined, alice.token)).body.items.map((t: { status: string }) => t.status);
const eventsOf = (id: string) => h.bus.entries.filter((e) => e.detail.data.paymentId === id).map((e) => e.detailType);
const createdEventOf = (id: string) => h.events("payment.created").find((e) => e.detail.data.paymentId === id)!.detail;

describe("the process consumer (payment.created)", () => {
  test("completes a payment through the simulator", async () => {
    const { id } = await create({ amount: "10000.00" });
    await processConsumer(h.ctx)(createdEventOf(id), { attempt: 1 });
    const payment = await get(id);
    expect(payment).toMatchObject({ status: "completed", pspTransactionId: `sim_${id.replaceAll("-", "")}`, failureReason: null });
    expect(payment.completedAt).not.toBeNull();
    expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
    const completed = h.events("payment.completed").find((e) => e.detail.data.paymentId === id);
    expect(completed?.detail.data).toMatchObject({ status: "completed", amount: "10000.00" });
    // The request's id travels on into the events it caused.
    expect(completed?.detail.metadata.correlationId).toBe(createdEventOf(id).metadata.correlationId);
  });

  test("declines amounts above 10000.00 with limit_exceeded", async () => {
    const { id } = await create({ amount: "10000.01" });
    await processConsumer(h.ctx)(createdEventOf(id), { attempt: 1 });
    expect(await get(id)).toMatchObject({ status: "failed", failureReason: "limit_exceeded", completedAt: null });
    expect(eventsOf(id)).toEqual(["payment.created", "payment.failed"]);
  });

  test("a redelivered event never processes a payment twice", async () => {
    const { id } = await create();
    const consume = processConsumer(h.ctx);
    const event = createdEventOf(id);
    await consume(event, { attempt: 1 });
    await consume(event, { attempt: 2 });
    await Promise.all([consume(event, { attempt: 3 }), consume(event, { attempt: 3 })]);
    expect(h.provider.charges.get(id)).toBe(1);
    expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
    expect(eventsOf(id)).toEqual(["payment.created", "payment.completed"]);
    const inbox = await h.database.db.select().from(paymentsInbox).where(eq(paymentsInbox.eventId, event.id));
    expect(inbox.map((row) => row.subscriber)).toEqual(["process"]);
  });

  test("concurrent first deliveries charge once", async () => {
    const { id } = await create();
    const consume = processConsumer(h.ctx);
    const event = createdEventOf(id);
    await Promise.all(Array.from({ length: 5 }, () => consume(event, { attempt: 1 })));
    expect(h.provider.charges.get(id)).toBe(1);
    expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
  });

  test("two different events for one payment (a replayed archive) still charge once", async () => {
    const { id } = await create();
    const event = createdEventOf(id);
    const copy = createEvent("payment.created", event.data as never, event.metadata);
    await processConsumer(h.ctx)(event, { attempt: 1 });
    await processConsumer(h.ctx)(copy, { attempt: 1 });
    expect(h.provider.charges.get(id)).toBe(1);
  });

  test("events it cannot parse are thrown back to the bus", async () => {
    const consume = processConsumer(h.ctx);
    const event = createdEventOf((await create()).id);
    await expect(consume({ ...event, data: { paymentId: "nope" } }, { attempt: 1 })).rejects.toThrow(/contract/);
    await expect(consume({ ...event, type: "payment.completed" }, { attempt: 1 })).rejects.toThrow(/unexpected event type/);
    await expect(consume({ ...event, version: 2 }, { attempt: 1 })).rejects.toThrow(/version/);
    await expect(consume({ foo: "bar" } as never, { attempt: 1 })).rejects.toThrow(/unparseable/);
  });

  test("an event for a payment this database does not have is acknowledged", async () => {
    const event = createEvent(
      "payment.created",
      { paymentId: "01a1fde6-d43c-7fcc-8c2c-04cf97b9f671", senderId: alice.id, recipientId: bob.id, amount: "1.00", currency: "USD", status: "pending" },
      { correlationId: "x", actor: null },
    );
    await expect(processConsumer(h.ctx)(event, { attempt: 1 })).resolves.toBeUndefined();
  });

  test("a scheduled payment is left pending until it is due", async () => {
    const { id } = await create({ type: "scheduled", scheduledFor: new Date(Date.now() + HOUR).toISOString() });
    await h.deliverCreated();
    expect((await get(id)).status).toBe("pending");
    expect(await statuses(id)).toEqual(["pending"]);
  });
});

describe("the due cron", () => {
  test("processes scheduled payments once they are due, not before", async () => {
    const soon = await create({ type: "scheduled", scheduledFor: new Date(Date.now() + HOUR).toISOString() });
    const later = await create({ type: "scheduled", scheduledFor: new Date(Date.now() + 3 * HOUR).toISOString(), amount: "50000.00" });
    await h.deliverCreated();
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 0 });
    h.clock.offsetMs = HOUR + 1000;
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 1, completed: 1 });
    expect((await get(soon.id)).status).toBe("completed");
    expect((await get(later.id)).status).toBe("pending");
    h.clock.offsetMs = 3 * HOUR + 1000;
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 1, failed: 1 });
    expect(await get(later.id)).toMatchObject({ status: "failed", failureReason: "limit_exceeded" });
    expect(await statuses(later.id)).toEqual(["pending", "processing", "failed"]);
  });

  test("takes over an instant payment whose event never arrived (after a grace period)", async () => {
    const { id } = await create();
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 0 });
    h.clock.offsetMs = h.ctx.processing.instantGraceMs + 1000;
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 1, completed: 1 });
    // The late event changes nothing.
    await h.deliverCreated();
    expect(h.provider.charges.get(id)).toBe(1);
    expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
  });

  test("overlapping runs process each due payment exactly once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 16; i++)
      ids.push((await create({ type: "scheduled", scheduledFor: new Date(Date.now() + HOUR).toISOString(), amount: `${i + 1}.00` })).id);
    await h.deliverCreated();
    h.clock.offsetMs = 2 * HOUR;
    // Small batches, so the runs split the work between them (SKIP LOCKED) instead of one taking all.
    const ctx = { ...h.ctx, processing: { ...h.ctx.processing, batchSize: 4 } };
    const runs = await Promise.all([runDue(ctx), runDue(ctx), runDue(ctx), runDue(ctx)]);
    expect(runs.map((run) => run.claimed)).toEqual([4, 4, 4, 4]);
    expect(runs.reduce((sum, run) => sum + run.completed, 0)).toBe(16);
    for (const id of ids) {
      expect(h.provider.charges.get(id)).toBe(1);
      expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
      expect(eventsOf(id)).toEqual(["payment.created", "payment.completed"]);
    }
  });

  test("a cancelled scheduled payment is never processed", async () => {
    const { id } = await create({ type: "scheduled", scheduledFor: new Date(Date.now() + HOUR).toISOString() });
    expect((await call(h.app, "POST", `/payments/${id}/cancel`, undefined, alice.token)).status).toBe(200);
    h.clock.offsetMs = 2 * HOUR;
    await runDue(h.ctx);
    expect(h.provider.charges.get(id)).toBeUndefined();
    expect(await statuses(id)).toEqual(["pending", "cancelled"]);
  });

  test("a provider outage leaves the payment processing; a later run retries it once the lease ran out", async () => {
    const { id } = await create();
    const outage: PaymentProvider = {
      name: "down",
      charge: async () => {
        throw new Error("connect ECONNREFUSED");
      },
    };
    await processConsumer({ ...h.ctx, provider: outage })(createdEventOf(id), { attempt: 1 });
    expect((await get(id)).status).toBe("processing");
    // Redelivery is a no-op; a run inside the lease leaves it alone.
    await h.deliverCreated();
    expect(await runDue(h.ctx)).toMatchObject({ retried: 0 });
    h.clock.offsetMs = h.ctx.processing.leaseMs + 1000;
    const runs = await Promise.all([runDue(h.ctx), runDue(h.ctx)]);
    expect(runs.reduce((sum, run) => sum + run.retried, 0)).toBe(1);
    expect((await get(id)).status).toBe("completed");
    expect(h.provider.charges.get(id)).toBe(1);
    expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
  });
});

describe("recurring payments", () => {
  test("each completed occurrence gets exactly one next occurrence, one interval after the last", async () => {
    const first = await create({ type: "recurring", interval: "daily", amount: "15.00", description: "allowance" });
    await h.deliverCreated();
    expect((await get(first.id)).status).toBe("completed");
    const [a, b, c] = await Promise.all([runDue(h.ctx), runDue(h.ctx), runDue(h.ctx)]);
    expect((a?.nextOccurrences ?? 0) + (b?.nextOccurrences ?? 0) + (c?.nextOccurrences ?? 0)).toBe(1);
    const series = await h.database.db.select().from(paymentsTable).where(eq(paymentsTable.seriesId, first.id)).orderBy(paymentsTable.occurrence);
    expect(series.map((p) => [p.occurrence, p.status])).toEqual([
      [1, "completed"],
      [2, "pending"],
    ]);
    const second = series[1]!;
    expect(series[0]?.nextPaymentId).toBe(second.id);
    expect(second.scheduledFor?.toISOString()).toBe(new Date(Date.parse(first.scheduledFor as string) + DAY).toISOString());
    expect(second).toMatchObject({ amount: "15.00", description: "allowance", senderId: alice.id, recipientId: bob.id, interval: "daily" });
    expect(eventsOf(second.id)).toEqual(["payment.created"]);
    expect(createdEventOf(second.id).data).toMatchObject({ paymentId: second.id, status: "pending", amount: "15.00" });
    // The sender sees it in their list and can cancel it, which ends the series.
    const listed = await call(h.app, "GET", "/payments?role=sender&status=pending", undefined, alice.token);
    expect(listed.body.items.map((p: { id: string }) => p.id)).toContain(second.id);

    // Not due yet; due a day later.
    await h.deliverCreated();
    expect((await get(second.id)).status).toBe("pending");
    h.clock.offsetMs = DAY + 1000;
    const run = await runDue(h.ctx);
    expect(run).toMatchObject({ claimed: 1, completed: 1, nextOccurrences: 1 });
    const third = (await h.database.db.select().from(paymentsTable).where(eq(paymentsTable.seriesId, first.id))).find((p) => p.occurrence === 3)!;
    expect(third.scheduledFor?.toISOString()).toBe(new Date(Date.parse(first.scheduledFor as string) + 2 * DAY).toISOString());
    expect((await call(h.app, "POST", `/payments/${third.id}/cancel`, undefined, alice.token)).status).toBe(200);
    h.clock.offsetMs = 3 * DAY;
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 0, nextOccurrences: 0 });
  });

  test("a declined occurrence ends the series", async () => {
    const first = await create({ type: "recurring", interval: "weekly", amount: "20000.00" });
    await h.deliverCreated();
    expect((await get(first.id)).status).toBe("failed");
    expect(await runDue(h.ctx)).toMatchObject({ nextOccurrences: 0 });
  });

  test("a recurring payment can start later", async () => {
    const start = new Date(Date.now() + 2 * HOUR).toISOString();
    const first = await create({ type: "recurring", interval: "monthly", scheduledFor: start });
    await h.deliverCreated();
    expect((await get(first.id)).status).toBe("pending");
    h.clock.offsetMs = 2 * HOUR + 1000;
    expect(await runDue(h.ctx)).toMatchObject({ claimed: 1, completed: 1, nextOccurrences: 1 });
    const next = (await h.database.db.select().from(paymentsTable).where(eq(paymentsTable.seriesId, first.id))).find((p) => p.occurrence === 2)!;
    expect(next.scheduledFor?.toISOString()).toBe(addInterval(new Date(start), "monthly", 1).toISOString());
  });
});

describe("addInterval", () => {
  const at = (text: string) => new Date(text);
  test("days and weeks", () => {
    expect(addInterval(at("2026-03-28T10:00:00.000Z"), "daily", 3).toISOString()).toBe("2026-03-31T10:00:00.000Z");
    expect(addInterval(at("2026-12-30T10:00:00.000Z"), "weekly", 1).toISOString()).toBe("2027-01-06T10:00:00.000Z");
  });
  test("months keep the day, clamped to short months, without drifting", () => {
    const anchor = at("2026-01-31T09:30:00.000Z");
    expect([1, 2, 3, 12, 13].map((k) => addInterval(anchor, "monthly", k).toISOString())).toEqual([
      "2026-02-28T09:30:00.000Z",
      "2026-03-31T09:30:00.000Z",
      "2026-04-30T09:30:00.000Z",
      "2027-01-31T09:30:00.000Z",
      "2027-02-28T09:30:00.000Z",
    ]);
    expect(addInterval(at("2027-12-29T00:00:00.000Z"), "monthly", 2).toISOString()).toBe("2028-02-29T00:00:00.000Z");
  });
});
