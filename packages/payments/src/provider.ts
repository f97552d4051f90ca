import type { PaymentProviderName } from "./config";
import { toCents } from "./money";

/** What the payment provider is asked to move. */
export interface ChargeRequest {
  /** Also the provider-side idempotency key: asking twice for one payment charges once. */
  paymentId: string;
  senderId: string;
  recipientId: string;
  /** Decimal string, e.g. "12.50". */
  amount: string;
  currency: string;
}

/**
 * The provider's answer. Both outcomes carry what the payment's history records: the
 * provider's own id of the transaction (`transactionId`, e.g. a PSP's charge or transfer id, the
 * handle for reconciliation, refunds and support) and the provider's own status word (`status`,
 * as the PSP names it, e.g. `succeeded` or `declined`).
 */
export type ChargeResult =
  | { outcome: "succeeded"; transactionId: string; status: string }
  /** `reason` is what users see as the payment's `failureReason` (snake_case, no PSP internals). */
  | { outcome: "declined"; transactionId: string; status: string; reason: string };

/**
 * The payment-provider adapter (PSP): what an adapter for a real provider implements. Processing
 * (processing.ts) claims a payment (`pending` → `processing`), calls `charge` outside any
 * database transaction, then records the result in one statement (`processing` → `completed` or
 * `failed`, with the transaction id and status on the payment and on its history row, and the
 * payment.completed / payment.failed event).
 *
 * An adapter's contract:
 * - **Idempotent on `paymentId`.** The same payment may be charged more than once (a crash after
 *   the provider answered, a retry after a timeout, two overlapping cron runs): pass `paymentId`
 *   as the provider's idempotency key so every call after the first returns the first call's
 *   result (same transaction id) and moves the money once.
 * - **Definite answers are results, doubt is an exception.** Resolve `succeeded` when the money
 *   moved and `declined` when the provider refused it for good (insufficient funds, limits,
 *   fraud rules). Throw for anything that leaves the outcome unknown or temporary (network
 *   errors, timeouts, 5xx, rate limits): the payment stays `processing` and the `due` cron charges
 *   it again, with the same payment id, once its lease has run out.
 * - **Bounded.** Time out well inside the function's timeout; never retry forever inside `charge`.
 * - **No secrets in answers.** Results and thrown messages are logged and stored; keep API keys and
 *   card data out of them.
 *
 * Adding one: a module beside this one that returns a `PaymentProvider`, its name in
 * `paymentProviders` (config.ts) and a case in `providerFor`; its credentials are read by
 * config.ts like any other variable. The production stage refuses to start with the simulator.
 */
export interface PaymentProvider {
  /** Short name, logged with provider failures. */
  readonly name: string;
  charge(request: ChargeRequest): Promise<ChargeResult>;
}

export const SIMULATOR_LIMIT = "10000.00";

/**
 * The local, deterministic provider (API.md): amounts above 10000.00 are declined with
 * `limit_exceeded`, all others succeed. The transaction id derives from the payment id, so a
 * repeated charge is recognisably the same one. `charges` counts calls per payment (tests).
 */
export function simulatorProvider(): PaymentProvider & { charges: Map<string, number> } {
  const charges = new Map<string, number>();
  return {
    name: "simulator",
    charges,
    async charge(request) {
      charges.set(request.paymentId, (charges.get(request.paymentId) ?? 0) + 1);
      const transactionId = `sim_${request.paymentId.replaceAll("-", "")}`;
      if (toCents(request.amount) > toCents(SIMULATOR_LIMIT)) {
        return { outcome: "declined", transactionId, status: "declined", reason: "limit_exceeded" };
      }
      return { outcome: "succeeded", transactionId, status: "succeeded" };
    },
  };
}

/** The adapter PAYMENT_PROVIDER names. */
export function providerFor(name: PaymentProviderName): PaymentProvider {
  switch (name) {
    case "simulator":
      return simulatorProvider();
  }
}
