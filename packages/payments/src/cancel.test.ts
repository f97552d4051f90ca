import type { Db } from "@enclave/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cancelPayment } from "./payment";
import { processPayment } from "./processing";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

let h: PaymentsHarness;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let admin: TestUser;
let n = 0;

beforeAll(async () => {
  h = await createPaymentsHarness();
  alice = await h.user("Alice");
  bob = await h.user("Bob");
  carol = await h.user("Carol");
  admin = await h.user("Admin", "ADMIN");
});
afterAll(() => h?.dispose());

const create = async (body: Record<string, unknown> = {}) => {
  const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount: "10.00", ...body }, alice.token, {
    "idempotency-key": `cancel-${++n}`,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.payment.id as string;
};
const cancel = (id: string, who: TestUser = alice) => call(h.app, "POST", `/payments/${id}/cancel`, undefined, who.token);
const statuses = async (id: string) =>
  (await call(h.app, "GET", `/payments/${id}/transactions`, undefined, alice.token)).body.items.map((t: { status: string }) => t.status);

describe("POST /payments/:id/cancel", () => {
  test("the sender cancels a pending payment: history row and payment.cancelled", async () => {
    const id = await create({ type: "scheduled", scheduledFor: new Date(Date.now() + 86_400_000).toISOString() });
    const before = h.events("payment.cancelled").length;
    const res = await cancel(id);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.payment).toMatchObject({ id, status: "cancelled" });
    expect(await statuses(id)).toEqual(["pending", "cancelled"]);
    const events = h.events("payment.cancelled").slice(before);
    expect(events.map((e) => e.detail.data)).toEqual([
      { paymentId: id, senderId: alice.id, recipientId: bob.id, amount: "10.00", currency: "USD", status: "cancelled" },
    ]);
    expect(events[0]?.detail.metadata.actor).toBe(alice.id);
    // The payment.created consumer and the cron leave it alone afterwards.
    await h.deliverCreated();
    expect(h.provider.charges.get(id)).toBeUndefined();
  });

  test("409 once it is not pending (cancelled, completed, failed)", async () => {
    const cancelled = await create();
    expect((await cancel(cancelled)).status).toBe(200);
    const again = await cancel(cancelled);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");

    const completed = await create();
    const failed = await create({ amount: "10000.01" });
    await h.deliverCreated();
    for (const id of [completed, failed]) {
      const res = await cancel(id);
      expect(res.status).toBe(409);
    }
    expect(await statuses(completed)).toEqual(["pending", "processing", "completed"]);
    expect(await statuses(failed)).toEqual(["pending", "processing", "failed"]);
  });

  test("only the sender: the recipient and an ADMIN get 403, anyone else 404", async () => {
    const id = await create();
    expect((await cancel(id, bob)).status).toBe(403);
    expect((await cancel(id, admin)).status).toBe(403);
    const stranger = await cancel(id, carol);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error.code).toBe("not_found");
    expect(await statuses(id)).toEqual(["pending"]);
  });

  test("bad ids and no token", async () => {
    expect((await cancel("01a1fde6-d43c-7fcc-8c2c-04cf97b9f671")).status).toBe(404);
    expect((await cancel("nope")).status).toBe(400);
    expect((await call(h.app, "POST", `/payments/${await create()}/cancel`)).status).toBe(401);
  });
});

describe("cancel racing processing", () => {
  test("exactly one wins, and the history shows only the winner's steps", async () => {
    const outcomes = { cancelled: 0, processed: 0 };
    for (let round = 0; round < 12; round++) {
      const id = await create();
      const charged = h.provider.charges.get(id) ?? 0;
      // Alternate which side starts first, so both interleavings occur; the assertions hold for either winner.
      const later = () => new Promise((resolve) => setImmediate(resolve));
      const [cancelled, processed] = await Promise.all([
        round % 2 ? later().then(() => cancel(id)) : cancel(id),
        round % 2
          ? processPayment(h.ctx, id, { correlationId: `race-${round}` })
          : later().then(() => processPayment(h.ctx, id, { correlationId: `race-${round}` })),
      ]);
      const payment = (await call(h.app, "GET", `/payments/${id}`, undefined, alice.token)).body.payment;
      const history = await statuses(id);
      const events = h.bus.entries.filter((e) => e.detail.data.paymentId === id).map((e) => e.detailType);
      if (cancelled.status === 200) {
        outcomes.cancelled++;
        expect(processed).toBe("skipped");
        expect(payment.status).toBe("cancelled");
        expect(history).toEqual(["pending", "cancelled"]);
        expect(h.provider.charges.get(id) ?? 0).toBe(charged);
        expect(events).toEqual(["payment.created", "payment.cancelled"]);
      } else {
        outcomes.processed++;
        expect(cancelled.status).toBe(409);
        expect(processed).toBe("completed");
        expect(payment.status).toBe("completed");
        expect(history).toEqual(["pending", "processing", "completed"]);
        expect(h.provider.charges.get(id)).toBe(charged + 1);
        expect(events).toEqual(["payment.created", "payment.completed"]);
      }
    }
    expect(outcomes.cancelled + outcomes.processed).toBe(12);
  });
});

test("a cancel that read `pending` but lost the update to processing is 409 and writes nothing", async () => {
  const id = await create();
  // Processing claims the payment between the cancel's read and its conditional update.
  let armed = true;
  const db = new Proxy(h.database.db, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "execute" || !armed) return typeof value === "function" ? value.bind(target) : value;
      return async (...args: Parameters<Db["execute"]>) => {
        armed = false;
        await processPayment(h.ctx, id, { correlationId: "interleaved" });
        return target.execute(...args);
      };
    },
  });
  const ctx = { ...h.ctx, database: async () => ({ ...h.database, db }) };
  await expect(cancelPayment(ctx, { userId: alice.id, role: "CUSTOMER" }, id, { correlationId: "c", actor: alice.id })).rejects.toMatchObject({
    code: "conflict",
  });
  expect(armed).toBe(false);
  expect(await statuses(id)).toEqual(["pending", "processing", "completed"]);
  expect(h.bus.entries.filter((e) => e.detail.data.paymentId === id).map((e) => e.detailType)).toEqual(["payment.created", "payment.completed"]);
});
