import { cron, defineJobs, log, subscribe } from "@enclave/core";
import type { PaymentsContext } from "./context";
import { paymentsManifest } from "./manifest";
import { expireIdempotencyKeys, processPayment, runDue } from "./processing";

/** What payments runs in the background. The kernel adds `outbox-sweeper` and `event-retention`. */
export const paymentsJobs = defineJobs(paymentsManifest.name, {
  /**
   * payment.created → the payment goes through the provider (pending → processing → completed |
   * failed). Idempotent: the claim is a conditional update from `pending` that also records the
   * event id in the inbox, so a redelivery (same `detail.id`) or a second worker charges nothing.
   */
  process: subscribe({
    description: "Processes a new payment through the payment provider (pending → processing → completed | failed)",
    on: ["payment.created"],
    handle: async (ctx: PaymentsContext, event, delivery) => {
      const outcome = await processPayment(ctx, event.data.paymentId, {
        correlationId: event.metadata.correlationId,
        delivery: { subscriber: delivery.subscription, eventId: event.id },
      });
      log("debug", "payment.created handled", { paymentId: event.data.paymentId, eventId: event.id, outcome });
    },
  }),
  due: cron({
    description: "Processes due scheduled payments, retries stalled ones, creates next occurrences of recurring ones",
    schedule: "rate(1 minute)",
    run: (ctx: PaymentsContext) => runDue(ctx),
  }),
  "idempotency-expiry": cron({
    description: "Deletes idempotency keys older than 24 hours",
    schedule: "rate(1 hour)",
    run: (ctx: PaymentsContext) => expireIdempotencyKeys(ctx),
  }),
});
