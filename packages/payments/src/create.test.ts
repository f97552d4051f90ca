import { sql } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { idempotencyKeysTable, type paymentsOutbox, paymentsTable, paymentTransactionsTable } from "./payments.sql";
import { expireIdempotencyKeys } from "./processing";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;
let keyCounter = 0;
const newKey = () => `key-${++keyCounter}-${Date.now()}`;

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
});
afterAll(() => h?.dispose());
beforeEach(() => {
  h.auth.mode = "up";
  h.clock.offsetMs = 0;
});

const pay = (body: unknown, options: { token?: string; key?: string | null } = {}) =>
  call(h.app, "POST", "/payments", body, options.token ?? alice.token, options.key === null ? {} : { "idempotency-key": options.key ?? newKey() });

const count = async (table: typeof paymentsTable | typeof paymentTransactionsTable | typeof idempotencyKeysTable | typeof paymentsOutbox) =>
  (await h.database.db.select({ n: sql<number>`count(*)::int` }).from(table))[0]?.n ?? 0;

describe("POST /payments", () => {
  test("creates a pending instant payment with its first history row and payment.created", async () => {
    const before = h.events("payment.created").length;
    const res = await pay({ recipientEmail: bob.email, amount: "12.5", description: "  lunch  " });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const payment = res.body.payment;
    expect(payment).toMatchObject({
      senderId: alice.id,
      recipientId: bob.id,
      amount: "12.50",
      currency: "USD",
      status: "pending",
      type: "instant",
      description: "lunch",
      scheduledFor: null,
      interval: null,
      pspTransactionId: null,
      failureReason: null,
      completedAt: null,
    });
    expect(typeof payment.amount).toBe("string");
    // What the client was told is what is stored.
    const got = await call(h.app, "GET", `/payments/${payment.id}`, undefined, alice.token);
    expect(got.body.payment).toEqual(payment);
    const [row] = await h.database.db
      .execute(sql`select amount::text as amount from payments.payments where id = ${payment.id}`)
      .then((r) => (r as { rows: { amount: string }[] }).rows);
    expect(row?.amount).toBe("12.50");
    const history = await call(h.app, "GET", `/payments/${payment.id}/transactions`, undefined, alice.token);
    expect(history.body.items.map((t: { status: string }) => t.status)).toEqual(["pending"]);
    const events = h.events("payment.created").slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]?.source).toBe("enclave.payments");
    expect(events[0]?.detail.data).toEqual({
      paymentId: payment.id,
      senderId: alice.id,
      recipientId: bob.id,
      amount: "12.50",
      currency: "USD",
      status: "pending",
    });
    expect(events[0]?.detail.metadata.actor).toBe(alice.id);
  });

  test("looks the recipient up with a service token, never the user's token, and passes the request id", async () => {
    const carol = await h.user("Carol");
    h.auth.calls.length = 0;
    const res = await call(h.app, "POST", "/payments", { recipientEmail: carol.email.toUpperCase(), amount: "1.00" }, alice.token, {
      "idempotency-key": newKey(),
      "x-request-id": "req-lookup-1",
    });
    expect(res.status).toBe(201);
    expect(res.body.payment.recipientId).toBe(carol.id);
    expect(h.auth.calls).toEqual([
      { path: `/auth/users?email=${encodeURIComponent(carol.email.toUpperCase())}`, service: "payments", requestId: "req-lookup-1" },
    ]);
    expect(h.events("payment.created").at(-1)?.detail.metadata.correlationId).toBe("req-lookup-1");
  });

  test("a found recipient is cached for 5 minutes", async () => {
    const dave = await h.user("Dave");
    h.auth.calls.length = 0;
    expect((await pay({ recipientEmail: dave.email, amount: "1.00" })).status).toBe(201);
    expect((await pay({ recipientEmail: dave.email, amount: "2.00" })).status).toBe(201);
    expect(h.auth.calls).toHaveLength(1);
    // Auth down: the cached recipient still works.
    h.auth.mode = "down";
    expect((await pay({ recipientEmail: dave.email, amount: "3.00" })).status).toBe(201);
  });

  test("scheduled and recurring payments", async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await pay({ recipientEmail: bob.email, amount: "5.00", type: "scheduled", scheduledFor: at });
    expect(scheduled.status, JSON.stringify(scheduled.body)).toBe(201);
    expect(scheduled.body.payment).toMatchObject({ type: "scheduled", scheduledFor: at, interval: null, status: "pending" });
    const recurring = await pay({ recipientEmail: bob.email, amount: "5.00", type: "recurring", interval: "weekly", currency: "EUR" });
    expect(recurring.status).toBe(201);
    expect(recurring.body.payment).toMatchObject({ type: "recurring", interval: "weekly", currency: "EUR" });
    expect(recurring.body.payment.scheduledFor).toBe(recurring.body.payment.createdAt);
  });

  test("404 for an unknown recipient, 400 for paying oneself; nothing is written", async () => {
    const before = await count(paymentsTable);
    const unknown = await pay({ recipientEmail: "nobody@example.com", amount: "1.00" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    const self = await pay({ recipientEmail: alice.email, amount: "1.00" });
    expect(self.status).toBe(400);
    expect(self.body.error).toMatchObject({ code: "validation_failed", details: [{ path: "recipientEmail" }] });
    expect(await count(paymentsTable)).toBe(before);
  });

  test("503 and no payment when auth is down (one retry, then give up)", async () => {
    const erin = await h.user("Erin");
    const before = { payments: await count(paymentsTable), events: h.bus.entries.length, keys: await count(idempotencyKeysTable) };
    h.auth.mode = "down";
    h.auth.calls.length = 0;
    const key = newKey();
    const res = await pay({ recipientEmail: erin.email, amount: "1.00" }, { key });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("unavailable");
    expect(h.auth.calls).toHaveLength(2);
    expect({ payments: await count(paymentsTable), events: h.bus.entries.length, keys: await count(idempotencyKeysTable) }).toEqual(before);
    // The key was not spent: the same request succeeds once auth is back.
    h.auth.mode = "up";
    expect((await pay({ recipientEmail: erin.email, amount: "1.00" }, { key })).status).toBe(201);
  });

  test("a single 5xx from auth is retried once", async () => {
    const frank = await h.user("Frank");
    h.auth.mode = "fail-once";
    h.auth.calls.length = 0;
    expect((await pay({ recipientEmail: frank.email, amount: "1.00" })).status).toBe(201);
    expect(h.auth.calls).toHaveLength(2);
  });

  test("auth that does not answer times out into 503", async () => {
    const gina = await h.user("Gina");
    h.auth.mode = "hang";
    const res = await pay({ recipientEmail: gina.email, amount: "1.00" });
    expect(res.status).toBe(503);
  });

  test("amounts are decimal strings only", async () => {
    for (const amount of [12.5, "12.505", "0", "0.00", "-3", "100000000.00", "1e2", "", null]) {
      const res = await pay({ recipientEmail: bob.email, amount });
      expect(res.status, `amount ${JSON.stringify(amount)}`).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
      expect(res.body.error.details[0].path).toBe("amount");
    }
    expect((await pay({ recipientEmail: bob.email, amount: "99999999.99" })).body.payment.amount).toBe("99999999.99");
  });

  test.each([
    ["missing recipient", { amount: "1.00" }, "recipientEmail"],
    ["bad email", { recipientEmail: "bob", amount: "1.00" }, "recipientEmail"],
    ["missing amount", { recipientEmail: "b@example.com" }, "amount"],
    ["lower-case currency", { recipientEmail: "b@example.com", amount: "1.00", currency: "usd" }, "currency"],
    ["unknown type", { recipientEmail: "b@example.com", amount: "1.00", type: "weekly" }, "type"],
    ["unknown interval", { recipientEmail: "b@example.com", amount: "1.00", type: "recurring", interval: "yearly" }, "interval"],
    ["instant with a time", { recipientEmail: "b@example.com", amount: "1.00", scheduledFor: "2099-01-01T00:00:00Z" }, "scheduledFor"],
    ["scheduled without a time", { recipientEmail: "b@example.com", amount: "1.00", type: "scheduled" }, "scheduledFor"],
    [
      "scheduled with an interval",
      { recipientEmail: "b@example.com", amount: "1.00", type: "scheduled", scheduledFor: "2099-01-01T00:00:00Z", interval: "daily" },
      "interval",
    ],
    ["recurring without an interval", { recipientEmail: "b@example.com", amount: "1.00", type: "recurring" }, "interval"],
    ["not a time", { recipientEmail: "b@example.com", amount: "1.00", type: "scheduled", scheduledFor: "tomorrow" }, "scheduledFor"],
    ["no such day", { recipientEmail: "b@example.com", amount: "1.00", type: "scheduled", scheduledFor: "2099-02-30T00:00:00Z" }, "scheduledFor"],
    ["description too long", { recipientEmail: "b@example.com", amount: "1.00", description: "x".repeat(501) }, "description"],
    ["control characters", { recipientEmail: "b@example.com", amount: "1.00", description: "a\u0000b" }, "description"],
    ["a surrogate in the email", { recipientEmail: "b\ud800@example.com", amount: "1.00" }, "recipientEmail"],
    ["unknown field", { recipientEmail: "b@example.com", amount: "1.00", senderId: "x" }, ""],
  ])("400 for %s", async (_name, body, path) => {
    const res = await pay(body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  test("400 for text with an unpaired surrogate (no UTF-8 text or jsonb can hold it)", async () => {
    for (const description of ["x\ud800y", "\udc00", "end\ud83c"]) {
      const res = await pay({ recipientEmail: bob.email, amount: "1.00", description });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.details[0].path).toBe("description");
    }
  });

  test("emoji and other paired surrogates are fine", async () => {
    const res = await pay({ recipientEmail: bob.email, amount: "1.00", description: "pizza \ud83c\udf55 night" });
    expect(res.status).toBe(201);
    expect(res.body.payment.description).toBe("pizza 🍕 night");
  });

  test("no body, however odd, makes it fail with a 500", async () => {
    const anyChar = fc.nat({ max: 0xffff }).map((code) => String.fromCharCode(code));
    const weird = fc.oneof(fc.string({ unit: anyChar }), fc.anything(), fc.double(), fc.constant(null));
    const time = fc.date({ noInvalidDate: true, min: new Date(-62_000_000_000_000), max: new Date(300_000_000_000_000) }).map((d) => d.toISOString());
    const body = fc.record(
      {
        recipientEmail: fc.oneof(fc.constant(bob.email), fc.constant(alice.email), fc.emailAddress(), weird),
        amount: fc.oneof(fc.stringMatching(/^[0-9]{1,10}(\.[0-9]{1,3})?$/), weird),
        currency: fc.oneof(fc.constantFrom("USD", "EUR", "usd"), weird),
        type: fc.oneof(fc.constantFrom("instant", "scheduled", "recurring"), weird),
        description: fc.oneof(fc.string({ unit: anyChar, maxLength: 40 }), weird),
        scheduledFor: fc.oneof(time, weird),
        interval: fc.oneof(fc.constantFrom("daily", "weekly", "monthly"), weird),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(body, fc.anything()), async (input) => {
        const res = await pay(input);
        expect([201, 400, 404], JSON.stringify(res.body)).toContain(res.status);
      }),
      { numRuns: 150 },
    );
  });

  test("400 for a time in the past", async () => {
    const res = await pay({ recipientEmail: bob.email, amount: "1.00", type: "scheduled", scheduledFor: new Date(Date.now() - 1000).toISOString() });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path: "scheduledFor", message: "must be in the future" }]);
  });

  test("bodies that are not JSON objects", async () => {
    expect((await call(h.app, "POST", "/payments", "{not json", alice.token, { "idempotency-key": newKey() })).body.error.code).toBe("malformed_json");
    expect((await call(h.app, "POST", "/payments", [], alice.token, { "idempotency-key": newKey() })).status).toBe(400);
    const noBody = await call(h.app, "POST", "/payments", undefined, alice.token, { "idempotency-key": newKey() });
    expect(noBody.status).toBe(400);
    const text = await h.app.request("/payments", {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": "text/plain", "idempotency-key": newKey() },
      body: "amount=1",
    });
    expect(text.status).toBe(415);
  });

  test("401 without a valid access token", async () => {
    expect((await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "1.00" }, undefined, { "idempotency-key": newKey() })).status).toBe(
      401,
    );
    expect((await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "1.00" }, "garbage", { "idempotency-key": newKey() })).status).toBe(
      401,
    );
  });
});

describe("Idempotency-Key", () => {
  test("is required and must be a sensible token", async () => {
    const body = { recipientEmail: bob.email, amount: "1.00" };
    for (const key of [null, "", "   ", "has space", "x".repeat(256), "caf\u00e9"]) {
      const res = await pay(body, { key });
      expect(res.status, `key ${JSON.stringify(key)}`).toBe(400);
      expect(res.body.error.details[0].path).toBe("Idempotency-Key");
    }
  });

  test("the same key and body replays the first result, without a second payment or lookup", async () => {
    const key = newKey();
    const body = { recipientEmail: bob.email, amount: "20.00", description: "rent" };
    const first = await pay(body, { key });
    expect(first.status).toBe(201);
    const payments = await count(paymentsTable);
    const events = h.bus.entries.length;
    h.auth.mode = "down"; // a replay needs nothing from auth
    const again = await pay(body, { key });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // Same request, spelled differently: still the same payment.
    h.auth.mode = "up";
    const spelled = await pay({ ...body, amount: "20", recipientEmail: bob.email.toUpperCase() }, { key: `"${key}"` });
    expect(spelled.body).toEqual(first.body);
    expect(await count(paymentsTable)).toBe(payments);
    expect(h.bus.entries.length).toBe(events);
  });

  test("the replay is the first result even after the payment moved on", async () => {
    const key = newKey();
    const body = { recipientEmail: bob.email, amount: "3.00" };
    const first = await pay(body, { key });
    await h.deliverCreated();
    const now = await call(h.app, "GET", `/payments/${first.body.payment.id}`, undefined, alice.token);
    expect(now.body.payment.status).toBe("completed");
    const again = await pay(body, { key });
    expect(again.body.payment.status).toBe("pending");
    expect(again.body).toEqual(first.body);
  });

  test("the same key with a different body is 409", async () => {
    const key = newKey();
    expect((await pay({ recipientEmail: bob.email, amount: "1.00" }, { key })).status).toBe(201);
    const other = await pay({ recipientEmail: bob.email, amount: "2.00" }, { key });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("conflict");
  });

  test("keys are scoped to the caller", async () => {
    const key = newKey();
    const mine = await pay({ recipientEmail: bob.email, amount: "1.00" }, { key });
    const theirs = await pay({ recipientEmail: alice.email, amount: "1.00" }, { key, token: bob.token });
    expect(theirs.status).toBe(201);
    expect(theirs.body.payment.id).not.toBe(mine.body.payment.id);
  });

  test("parallel requests with one key create exactly one payment", async () => {
    const key = newKey();
    const body = { recipientEmail: bob.email, amount: "7.77" };
    const before = { payments: await count(paymentsTable), tx: await count(paymentTransactionsTable), created: h.events("payment.created").length };
    const results = await Promise.all(Array.from({ length: 12 }, () => pay(body, { key })));
    for (const res of results) expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(new Set(results.map((res) => res.body.payment.id)).size).toBe(1);
    expect(results.filter((res) => res.headers.get("idempotent-replayed") === null)).toHaveLength(1);
    expect(await count(paymentsTable)).toBe(before.payments + 1);
    expect(await count(paymentTransactionsTable)).toBe(before.tx + 1);
    expect(h.events("payment.created").length).toBe(before.created + 1);
  });

  test("parallel requests with one key and different bodies: one payment, the others 409", async () => {
    const key = newKey();
    const results = await Promise.all([1, 2, 3, 4].map((n) => pay({ recipientEmail: bob.email, amount: `${n}.00` }, { key })));
    const created = results.filter((res) => res.status === 201);
    expect(created).toHaveLength(1);
    expect(results.filter((res) => res.status === 409)).toHaveLength(3);
    const rows = await h.database.db.select().from(idempotencyKeysTable).where(sql`${idempotencyKeysTable.key} = ${key}`);
    expect(rows.map((r) => r.paymentId)).toEqual([created[0]?.body.payment.id]);
  });

  test("keys are kept 24 hours, then expire", async () => {
    const key = newKey();
    const body = { recipientEmail: bob.email, amount: "4.00" };
    const first = await pay(body, { key });
    const [stored] = await h.database.db.select().from(idempotencyKeysTable).where(sql`${idempotencyKeysTable.key} = ${key}`);
    if (!stored) throw new Error("no key stored");
    expect(stored.expiresAt.getTime() - stored.createdAt.getTime()).toBe(24 * 3_600_000);
    expect(stored?.responseStatus).toBe(201);
    expect(stored?.responseBody).toEqual(first.body);
    h.clock.offsetMs = 23 * 3_600_000;
    await expireIdempotencyKeys(h.ctx);
    expect((await pay(body, { key })).body).toEqual(first.body);
    h.clock.offsetMs = 24 * 3_600_000 + 60_000;
    const { deleted } = await expireIdempotencyKeys(h.ctx);
    expect(deleted).toBeGreaterThan(0);
    expect(await h.database.db.select().from(idempotencyKeysTable).where(sql`${idempotencyKeysTable.key} = ${key}`)).toEqual([]);
  });
});
