import { APP, eventSource } from "@enclave/core/events/envelope";
import { defineManifest } from "@enclave/core/service";

export const paymentsManifest = defineManifest({
  name: "payments",
  prefix: "/payments",
  publishes: ["payment.created", "payment.completed", "payment.failed", "payment.cancelled"],
  subscriptions: [
    {
      name: "process",
      description: "Processes a new payment through the payment provider (pending → processing → completed | failed)",
      pattern: { source: [eventSource(APP, "payments")], "detail-type": ["payment.created"] },
    },
  ],
  crons: [
    {
      name: "due",
      description: "Processes due scheduled payments, retries stalled ones, creates next occurrences of recurring ones",
      schedule: "rate(1 minute)",
    },
    { name: "outbox-sweeper", description: "Publishes outbox rows a crashed request left behind", schedule: "rate(1 minute)" },
    { name: "idempotency-expiry", description: "Deletes idempotency keys older than 24 hours", schedule: "rate(1 hour)" },
  ],
});
