import { pgConstraint, pgErrorCode, uuidv7 } from "@enclave/core";
import { sweepOutbox } from "@enclave/core/events/sweeper";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { paymentsJobs } from "./jobs";
import { paymentsOutbox, paymentsTable } from "./payments.sql";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
});
afterAll(() => h?.dispose());

describe("the database refuses what the API would never write", () => {
  const base = () => ({
    id: uuidv7(),
    senderId: alice.id,
    recipientId: bob.id,
    amount: "1.00",
    currency: "USD",
    status: "pending" as const,
    type: "instant" as const,
    dueAt: new Date(),
  });
  async function refused(values: Record<string, unknown>, constraint: string | string[]) {
    const error = await h.database.db
      .insert(paymentsTable)
      .values({ ...base(), ...values } as never)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(pgErrorCode(error), String(constraint)).toBe("23514");
    expect([constraint].flat()).toContain(pgConstraint(error));
  }

  test.each<[Record<string, unknown>, string | string[]]>([
    [{ amount: "0.00" }, "payments_amount_positive"],
    [{ amount: "-5.00" }, "payments_amount_positive"],
    [{ currency: "usd" }, "payments_currency_format"],
    [{ status: "refunded" }, "payments_status_check"],
    [{ type: "weekly" }, ["payments_type_check", "payments_schedule_shape"]],
    [{ recipientId: "" }, "payments_not_to_self"],
    [{ scheduledFor: new Date() }, "payments_schedule_shape"],
    [{ type: "scheduled" }, "payments_schedule_shape"],
    [{ type: "recurring", scheduledFor: new Date(), interval: "daily" }, "payments_schedule_shape"],
    [{ occurrence: 1 }, "payments_schedule_shape"],
  ])("%j is refused by %s", async (values, constraint) => {
    await refused(values.recipientId === "" ? { ...values, recipientId: alice.id } : values, constraint);
  });

  test("amounts are exact numeric(10,2), and more than 10 digits do not fit", async () => {
    const id = uuidv7();
    await h.database.db.insert(paymentsTable).values({ ...base(), id, amount: "99999999.99" });
    const [row] = await h.database.db.select().from(paymentsTable).where(eq(paymentsTable.id, id));
    expect(row?.amount).toBe("99999999.99");
    const overflow = await h.database.db
      .insert(paymentsTable)
      .values({ ...base(), amount: "100000000.00" })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(pgErrorCode(overflow)).toBe("22003");
  });
});

describe("API.md conventions", () => {
  test("health with database latency", async () => {
    const res = await call(h.app, "GET", "/payments/health");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ service: "payments", status: "ok", database: { status: "ok" } });
  });

  test("OpenAPI documents every route, the Idempotency-Key header and money as strings", async () => {
    const res = await call(h.app, "GET", "/payments/openapi.json");
    expect(res.status).toBe(200);
    const paths = res.body.paths as Record<string, Record<string, { parameters: { name: string; in: string; required: boolean }[] }>>;
    expect(Object.keys(paths).sort()).toEqual(
      ["/payments", "/payments/health", "/payments/{id}", "/payments/{id}/cancel", "/payments/{id}/transactions"].sort(),
    );
    expect(paths["/payments"]?.post?.parameters).toContainEqual(expect.objectContaining({ name: "Idempotency-Key", in: "header", required: true }));
    expect(JSON.stringify(paths["/payments"]?.post)).toContain('"amount":{"type":"string"');
  });

  test("request ids are echoed, and unknown routes answer the error shape", async () => {
    const res = await call(h.app, "GET", "/payments/01a1fde6-d43c-7fcc-8c2c-04cf97b9f671/nothing", undefined, alice.token, { "x-request-id": "trace-me-1" });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toBe("trace-me-1");
    expect(res.body.error.code).toBe("not_found");
  });

  test("an oversized body is 413", async () => {
    const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "1.00", description: "x".repeat(1_100_000) }, alice.token, {
      "idempotency-key": "huge",
    });
    expect(res.status).toBe(413);
  });

  test("the jobs match what the service publishes and runs", () => {
    expect(Object.entries(paymentsJobs).flatMap(([name, job]) => (job.kind === "subscription" ? [name] : []))).toEqual(["process"]);
    expect(Object.entries(paymentsJobs).flatMap(([name, job]) => (job.kind === "cron" ? [[name, job.schedule]] : []))).toContainEqual([
      "due",
      "rate(1 minute)",
    ]);
  });
});

describe("events survive a bus that is down", () => {
  test("the payment is created, its event waits in the outbox, and the sweeper publishes it later", async () => {
    h.bus.down = true;
    const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "6.00" }, alice.token, { "idempotency-key": "bus-down" });
    h.bus.down = false;
    expect(res.status).toBe(201);
    const id = res.body.payment.id;
    expect(h.events("payment.created").some((e) => e.detail.data.paymentId === id)).toBe(false);
    const waiting = await h.database.db
      .select()
      .from(paymentsOutbox)
      .where(sql`${paymentsOutbox.publishedAt} is null and ${paymentsOutbox.detail}->'data'->>'paymentId' = ${id}`);
    expect(waiting).toHaveLength(1);
    expect(await sweepOutbox(h.database.db, { outbox: paymentsOutbox, bus: h.bus }, { graceMs: 0 })).toMatchObject({ published: 1 });
    expect(h.events("payment.created").filter((e) => e.detail.data.paymentId === id)).toHaveLength(1);
  });
});
