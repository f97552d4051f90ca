import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

/**
 * Database round trips per route, counted on the driver (`stats.queries`), relay's mark-sent
 * included. Budgets: at most 3 per write route, at most 2 per read route. The recipient
 * lookup is an HTTP call to auth, not a database round trip.
 */
let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let paymentId: string;
let n = 0;

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
  carol = await h.user("Carol");
  for (let i = 0; i < 5; i++) {
    const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "2.00" }, alice.token, { "idempotency-key": `seed-${i}` });
    paymentId = res.body.payment.id;
  }
});
afterAll(() => h?.dispose());

async function trips(run: () => Promise<{ status: number }>, status: number): Promise<number> {
  const before = h.database.stats.queries;
  const res = await run();
  expect(res.status, JSON.stringify(res)).toBe(status);
  return h.database.stats.queries - before;
}

const post =
  (body: unknown, key: string, token = alice.token) =>
  () =>
    call(h.app, "POST", "/payments", body, token, { "idempotency-key": key });

describe("round trips per payments route", () => {
  test("POST /payments: 3 (key lookup, one write statement, mark-sent); a replay 1", async () => {
    const body = { recipientEmail: carol.email, amount: "9.99" };
    expect(await trips(post(body, `rt-${++n}`), 201)).toBe(3);
    const key = `rt-${++n}`;
    expect(await trips(post(body, key), 201)).toBe(3);
    expect(await trips(post(body, key), 201)).toBe(1);
    expect(await trips(post({ ...body, amount: "1.00" }, key), 409)).toBe(1);
    const scheduled = { ...body, type: "recurring", interval: "monthly", scheduledFor: new Date(Date.now() + 3_600_000).toISOString() };
    expect(await trips(post(scheduled, `rt-${++n}`), 201)).toBe(3);
  });

  test("POST /payments failures: unknown recipient and self 1, bad input 0", async () => {
    expect(await trips(post({ recipientEmail: "nobody@example.com", amount: "1.00" }, `rt-${++n}`), 404)).toBe(1);
    expect(await trips(post({ recipientEmail: alice.email, amount: "1.00" }, `rt-${++n}`), 400)).toBe(1);
    expect(await trips(post({ recipientEmail: bob.email, amount: 1 }, `rt-${++n}`), 400)).toBe(0);
    expect(await trips(() => call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "1.00" }, alice.token), 400)).toBe(0);
  });

  test("GET /payments: 1 for every filter combination", async () => {
    for (const query of ["", "?role=sender", "?role=recipient", "?status=pending", "?status=pending&role=sender", "?limit=2"]) {
      expect(await trips(() => call(h.app, "GET", `/payments${query}`, undefined, alice.token), 200), query).toBe(1);
    }
    const first = await call(h.app, "GET", "/payments?limit=2", undefined, alice.token);
    expect(await trips(() => call(h.app, "GET", `/payments?limit=2&cursor=${first.body.nextCursor}`, undefined, alice.token), 200)).toBe(1);
  });

  test("GET /payments/:id and /transactions: 1 each, also when not found", async () => {
    expect(await trips(() => call(h.app, "GET", `/payments/${paymentId}`, undefined, bob.token), 200)).toBe(1);
    expect(await trips(() => call(h.app, "GET", `/payments/${paymentId}/transactions`, undefined, alice.token), 200)).toBe(1);
    expect(await trips(() => call(h.app, "GET", `/payments/${paymentId}`, undefined, carol.token), 404)).toBe(1);
    expect(await trips(() => call(h.app, "GET", `/payments/${paymentId}/transactions`, undefined, carol.token), 404)).toBe(1);
  });

  test("POST /payments/:id/cancel: 3 (read, conditional update with history and event, mark-sent); refusals 1", async () => {
    expect(await trips(() => call(h.app, "POST", `/payments/${paymentId}/cancel`, undefined, bob.token), 403)).toBe(1);
    expect(await trips(() => call(h.app, "POST", `/payments/${paymentId}/cancel`, undefined, alice.token), 200)).toBe(3);
    expect(await trips(() => call(h.app, "POST", `/payments/${paymentId}/cancel`, undefined, alice.token), 409)).toBe(1);
  });

  test("the process consumer: 3 per payment (claim, settle with event, mark-sent); a redelivery 1", async () => {
    const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "3.00" }, alice.token, { "idempotency-key": `rt-${++n}` });
    const event = h.events("payment.created").find((e) => e.detail.data.paymentId === res.body.payment.id)!.detail;
    const { processConsumer } = await import("./testing");
    const consume = processConsumer(h.ctx);
    let before = h.database.stats.queries;
    await consume(event, { attempt: 1 });
    expect(h.database.stats.queries - before).toBe(3);
    before = h.database.stats.queries;
    await consume(event, { attempt: 2 });
    expect(h.database.stats.queries - before).toBe(1);
  });
});
