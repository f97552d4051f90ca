import { createEvent, type EventEnvelope, type EventType, eventHandler, uuidv7 } from "@enclave/core";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { auditLogsTable } from "./admin.sql";
import { adminJobs } from "./jobs";
import { type AdminHarness, createAdminHarness } from "./testing";

let h: AdminHarness;
let deliver: (detail: unknown, attempt?: number) => Promise<void>;

beforeAll(async () => {
  h = await createAdminHarness();
  const handler = eventHandler("audit", adminJobs.audit, h.ctx);
  deliver = (detail, attempt = 1) => handler(detail as EventEnvelope, { attempt });
});
afterAll(() => h?.dispose());
beforeEach(async () => {
  await h.database.db.execute(sql`truncate ${auditLogsTable}`);
});

const rows = () => h.database.db.select().from(auditLogsTable);
const user = "0190a0b0-0000-7000-8000-0000000000a1";
const other = "0190a0b0-0000-7000-8000-0000000000b2";
const admin = "0190a0b0-0000-7000-8000-0000000000c3";
const profileId = "0190a0b0-0000-7000-8000-0000000000d4";
const paymentId = "0190a0b0-0000-7000-8000-0000000000e5";
const payment = { paymentId, senderId: user, recipientId: other, amount: "12.50", currency: "USD", status: "pending" };

describe("maps every event type of the contract", () => {
  const cases: [EventType, Record<string, unknown>, string | null, { userId: string; resourceType: string; resourceId: string }][] = [
    ["user.registered", { userId: user, email: "a@x.io", name: "A", role: "CUSTOMER" }, user, { userId: user, resourceType: "user", resourceId: user }],
    ["user.role_changed", { userId: user, from: "CUSTOMER", to: "VENDOR" }, admin, { userId: user, resourceType: "user", resourceId: user }],
    ["profile.created", { profileId, userId: user }, user, { userId: user, resourceType: "profile", resourceId: profileId }],
    ["profile.updated", { profileId, userId: user }, user, { userId: user, resourceType: "profile", resourceId: profileId }],
    ["payment.created", payment, user, { userId: user, resourceType: "payment", resourceId: paymentId }],
    ["payment.completed", { ...payment, status: "completed" }, null, { userId: user, resourceType: "payment", resourceId: paymentId }],
    ["payment.failed", { ...payment, status: "failed" }, null, { userId: user, resourceType: "payment", resourceId: paymentId }],
    ["payment.cancelled", { ...payment, status: "cancelled" }, user, { userId: user, resourceType: "payment", resourceId: paymentId }],
    ["config.changed", { key: "feature.x" }, admin, { userId: admin, resourceType: "config", resourceId: "feature.x" }],
  ];
  test.each(cases)("%s", async (type, data, actor, mapped) => {
    const event = createEvent(type, data as never, { correlationId: "corr-1", actor });
    await deliver(event);
    expect(await rows()).toEqual([
      {
        id: event.id,
        action: type,
        ...mapped,
        actorId: actor,
        details: data,
        ipAddress: null,
        userAgent: null,
        correlationId: "corr-1",
        createdAt: new Date(event.occurredAt),
        recordedAt: expect.any(Date),
      },
    ]);
  });
});

describe("records events it does not know, with what can be mapped", () => {
  const base = () => ({ id: uuidv7(), version: 1, occurredAt: "2026-03-01T10:00:00.123Z", metadata: { correlationId: "c", actor: admin } });

  test("an unknown type of an unknown domain", async () => {
    const invoiceId = uuidv7();
    await deliver({ ...base(), type: "invoice.issued", data: { invoiceId, userId: user, total: "3.00" } });
    expect((await rows())[0]).toMatchObject({
      action: "invoice.issued",
      userId: user,
      actorId: admin,
      resourceType: "invoice",
      resourceId: invoiceId,
      details: { invoiceId, userId: user, total: "3.00" },
      createdAt: new Date("2026-03-01T10:00:00.123Z"),
    });
  });

  test("a new type of a known domain is mapped like its siblings", async () => {
    await deliver({ ...base(), type: "payment.refunded", data: { paymentId, senderId: user, refundId: "r-1" } });
    expect((await rows())[0]).toMatchObject({ action: "payment.refunded", userId: user, resourceType: "payment", resourceId: paymentId });
  });

  test("a newer version whose data no longer matches the contract", async () => {
    await deliver({ ...base(), type: "payment.created", version: 2, data: { payment: { id: paymentId }, amount: 12.5 } });
    expect((await rows())[0]).toMatchObject({
      action: "payment.created",
      userId: admin,
      resourceType: "payment",
      resourceId: null,
      details: { payment: { id: paymentId }, amount: 12.5 },
    });
  });

  test("a type without a domain, no data, no metadata, no time", async () => {
    const id = uuidv7();
    const before = Date.now();
    await deliver({ id, type: "heartbeat" });
    const [row] = await rows();
    expect(row).toMatchObject({
      id,
      action: "heartbeat",
      userId: null,
      actorId: null,
      resourceType: null,
      resourceId: null,
      details: null,
      correlationId: null,
    });
    expect(row?.createdAt.getTime()).toBeGreaterThanOrEqual(before - 1);
  });

  const recent = (date: Date | undefined) => Math.abs((date?.getTime() ?? 0) - Date.now()) < 60_000;

  test("data that is not an object is kept as it is; unusable actor, correlation id and time are ignored", async () => {
    await deliver({ ...base(), type: "user.registered", occurredAt: "not a time", data: ["odd"], metadata: { actor: "not-a-uuid", correlationId: 7 } });
    const [row] = await rows();
    expect(row).toMatchObject({
      action: "user.registered",
      details: ["odd"],
      userId: null,
      actorId: null,
      resourceType: "user",
      resourceId: null,
      correlationId: null,
    });
    expect(recent(row?.createdAt)).toBe(true);
  });

  test("a time out of range is replaced by the time of recording; metadata may be null", async () => {
    await deliver({ ...base(), type: "user.registered", occurredAt: "+275760-09-13T00:00:00.000Z", data: "123", metadata: null });
    const [row] = await rows();
    expect(row).toMatchObject({ details: "123", actorId: null, correlationId: null });
    expect(recent(row?.createdAt)).toBe(true);
  });

  test("a subject id that is not a UUID stays in details; the actor stands in as user", async () => {
    await deliver({ ...base(), type: "user.role_changed", data: { userId: "not-a-uuid", from: "X", to: "Y" } });
    expect((await rows())[0]).toMatchObject({ userId: admin, actorId: admin, resourceId: "not-a-uuid", details: { userId: "not-a-uuid", from: "X", to: "Y" } });
  });

  test("upper-case ids are stored in canonical form, so a redelivery still matches", async () => {
    const id = uuidv7();
    await deliver({ ...base(), id: id.toUpperCase(), type: "user.registered", data: { userId: user.toUpperCase() } });
    await deliver({ ...base(), id, type: "user.registered", data: { userId: user } });
    expect(await rows()).toEqual([expect.objectContaining({ id, userId: user })]);
  });
});

describe("rejects what is not an envelope at all, so the bus retries and dead-letters it", () => {
  test.each([
    ["null", null],
    ["a string", "user.registered"],
    ["an array", [{ id: uuidv7(), type: "user.registered" }]],
    ["an empty object", {}],
    ["no type", { id: uuidv7(), data: {} }],
    ["an empty type", { id: uuidv7(), type: "", data: {} }],
    ["no id", { type: "user.registered", data: {} }],
    ["an id that is not a UUID", { id: "evt-1", type: "user.registered", data: {} }],
  ])("%s", async (_name, detail) => {
    await expect(deliver(detail)).rejects.toThrow(/not an event envelope/);
    expect(await rows()).toHaveLength(0);
  });
});

describe("exactly once per event id", () => {
  test("a redelivery adds nothing and keeps the first delivery's row, one round trip each", async () => {
    const event = createEvent("user.registered", { userId: user, email: "a@x.io", name: "A", role: "CUSTOMER" }, { correlationId: "c1", actor: user });
    const before = h.database.stats.queries;
    await deliver(event);
    await deliver({ ...event, data: { ...event.data, name: "changed" } }, 2);
    await deliver(event, 3);
    expect(h.database.stats.queries - before).toBe(3);
    const all = await rows();
    expect(all).toHaveLength(1);
    expect(all[0]?.details).toMatchObject({ name: "A" });
  });

  test("concurrent deliveries of the same events leave one row per event", async () => {
    const events = Array.from({ length: 5 }, (_, i) =>
      createEvent("payment.created", { ...payment, paymentId: uuidv7(), amount: `${i + 1}.00` }, { correlationId: `c${i}`, actor: user }),
    );
    // Every event delivered eight times at once, all interleaved.
    const deliveries = events.flatMap((event) => Array.from({ length: 8 }, (_, attempt) => deliver(event, attempt + 1)));
    await Promise.all(deliveries);
    const all = await rows();
    expect(all).toHaveLength(5);
    expect(all.map((r) => r.id).sort()).toEqual(events.map((e) => e.id).sort());
  });
});

describe("the audit log is append-only", () => {
  test("rows can be added but never changed or deleted", async () => {
    const event = createEvent("config.changed", { key: "feature.y" }, { correlationId: "corr-2", actor: admin });
    await deliver(event);
    const db = h.database.db;
    await expect(db.update(auditLogsTable).set({ action: "tampered" })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/append-only \(UPDATE refused\)/) },
    });
    await expect(db.delete(auditLogsTable)).rejects.toMatchObject({ cause: { message: expect.stringMatching(/append-only \(DELETE refused\)/) } });
    expect((await rows()).map((r) => [r.id, r.action])).toEqual([[event.id, "config.changed"]]);
    // A redelivery is still a no-op, not a refused update.
    await deliver(event);
    expect(await rows()).toHaveLength(1);
  });
});
