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

export type ChargeResult =
  | { outcome: "succeeded"; transactionId: string; status: string }
  | { outcome: "declined"; transactionId: string; status: string; reason: string };

/**
 * The payment-provider adapter (PSP). `charge` answers with an outcome for declines and
 * throws for transient failures (network, timeouts): the payment then stays `processing` and
 * the `due` cron retries it later with the same payment id.
 */
export interface PaymentProvider {
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
