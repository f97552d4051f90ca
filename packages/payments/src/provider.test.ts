/**
 * Money is never faked in production: the production stage refuses the simulator at start-up,
 * and every change the provider causes records its transaction id and its status, on the
 * payment and on the payment's history row.
 */
import { ConfigError, rowsOf } from "@enclave/core";
import { generatePrivateJwk } from "@enclave/core/keys";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readPaymentsConfig } from "./config";
import { paymentsContextFromConfig } from "./context";
import type { ChargeRequest, PaymentProvider } from "./provider";
import { call, createPaymentsHarness, type PaymentsHarness, type TestUser } from "./testing";

const baseEnv = { DATABASE_URL: "pglite://memory", SERVICE_SIGNING_KEY: JSON.stringify(generatePrivateJwk()) };

function configProblems(env: Record<string, string | undefined>): { message: string; problems: string[]; service?: string | undefined } {
  try {
    readPaymentsConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { message: error.message, problems: error.problems, service: error.service };
  }
  throw new Error("expected a configuration error");
}

describe("the payment provider setting", () => {
  test("production refuses the simulator, set or defaulted, naming the service and the setting", () => {
    for (const provider of ["simulator", undefined]) {
      const failure = configProblems({ ...baseEnv, STAGE: "production", PAYMENT_PROVIDER: provider });
      expect(failure.service).toBe("payments");
      expect(failure.message).toMatch(/^Invalid payments configuration:/);
      expect(failure.problems).toHaveLength(1);
      expect(failure.problems[0]).toMatch(/^PAYMENT_PROVIDER: .*"simulator".*refused on the production stage \(STAGE=production\)/);
    }
  });

  test("the refusal is reported together with the other problems of the same start-up", () => {
    const failure = configProblems({ STAGE: "production", DATABASE_URL: "pglite://memory" });
    expect(failure.problems).toEqual(expect.arrayContaining([expect.stringMatching(/^SERVICE_SIGNING_KEY/), expect.stringMatching(/^PAYMENT_PROVIDER:/)]));
  });

  test("other stages run the simulator, and the context uses the adapter the setting names", async () => {
    for (const stage of ["local", "dev", "pr-42", "staging", "production-copy"]) {
      const config = readPaymentsConfig({ ...baseEnv, STAGE: stage });
      expect(config.PAYMENT_PROVIDER).toBe("simulator");
      const ctx = paymentsContextFromConfig(config);
      expect(ctx.provider.name).toBe("simulator");
    }
  });

  test("an unknown adapter is a configuration error, on any stage", () => {
    expect(configProblems({ ...baseEnv, PAYMENT_PROVIDER: "stripe-ish" }).problems).toEqual([
      expect.stringMatching(/^PAYMENT_PROVIDER: must be one of simulator/),
    ]);
  });
});

describe("what the provider answered is recorded with every change it causes", () => {
  let h: PaymentsHarness;
  let alice: TestUser;
  let bob: TestUser;
  let n = 0;
  /** A provider with its own ids and status words, declining one amount. */
  const psp: PaymentProvider & { calls: ChargeRequest[] } = {
    name: "test-psp",
    calls: [],
    async charge(request) {
      psp.calls.push(request);
      const transactionId = `tx_${request.paymentId.slice(-12)}`;
      if (request.amount === "66.60") return { outcome: "declined", transactionId, status: "card_declined", reason: "insufficient_funds" };
      return { outcome: "succeeded", transactionId, status: "captured" };
    },
  };

  beforeAll(async () => {
    h = await createPaymentsHarness({ provider: psp });
    alice = await h.user("Alice");
    bob = await h.user("Bob");
  });
  afterAll(() => h?.dispose());

  async function pay(amount: string) {
    const res = await call(h.app, "POST", "/payments", { recipientEmail: bob.email, amount }, alice.token, { "idempotency-key": `psp-${++n}` });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await h.deliverCreated();
    return res.body.payment.id as string;
  }

  const history = async (id: string) =>
    rowsOf(
      await h.database.db.execute(
        sql`select status, psp_transaction_id as "transactionId", psp_status as "pspStatus" from payments.payment_transactions where payment_id = ${id} order by seq`,
      ),
    );
  const stored = async (id: string) =>
    rowsOf(
      await h.database.db.execute(sql`select status, psp_transaction_id as "transactionId", psp_status as "pspStatus" from payments.payments where id = ${id}`),
    )[0];

  test("a completed payment: the provider's id and status on the payment and on the completing history row", async () => {
    const id = await pay("12.50");
    const transactionId = `tx_${id.slice(-12)}`;
    expect(await stored(id)).toEqual({ status: "completed", transactionId, pspStatus: "captured" });
    expect(await history(id)).toEqual([
      { status: "pending", transactionId: null, pspStatus: null },
      { status: "processing", transactionId: null, pspStatus: null },
      { status: "completed", transactionId, pspStatus: "captured" },
    ]);
    const api = await call(h.app, "GET", `/payments/${id}`, undefined, alice.token);
    expect(api.body.payment.pspTransactionId).toBe(transactionId);
  });

  test("a declined payment: the provider's id and its own status word, the reason as failureReason", async () => {
    const id = await pay("66.60");
    const transactionId = `tx_${id.slice(-12)}`;
    expect(await stored(id)).toEqual({ status: "failed", transactionId, pspStatus: "card_declined" });
    expect((await history(id)).at(-1)).toEqual({ status: "failed", transactionId, pspStatus: "card_declined" });
    expect((await call(h.app, "GET", `/payments/${id}`, undefined, alice.token)).body.payment.failureReason).toBe("insufficient_funds");
  });

  test("the provider is asked with the payment id as its idempotency key", async () => {
    const id = await pay("1.00");
    expect(psp.calls.filter((c) => c.paymentId === id)).toEqual([{ paymentId: id, senderId: alice.id, recipientId: bob.id, amount: "1.00", currency: "USD" }]);
  });
});
