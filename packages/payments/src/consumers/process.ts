import { type EventHandler, log, parseEvent } from "@enclave/core";
import type { PaymentsContext } from "../context";
import { PROCESS_SUBSCRIBER, processPayment } from "../processing";

/**
 * payment.created → the payment goes through the provider (pending → processing → completed |
 * failed). Idempotent: the claim is a conditional update from `pending` that also records the
 * event id in the inbox, so a redelivery (same `detail.id`) or a second worker charges nothing.
 * An envelope that does not parse throws, so the bus retries and then dead-letters it.
 */
export function processConsumer(ctx: PaymentsContext): EventHandler {
  return async (detail) => {
    const event = parseEvent(detail, "payment.created");
    const outcome = await processPayment(ctx, event.data.paymentId, {
      correlationId: event.metadata.correlationId,
      delivery: { subscriber: PROCESS_SUBSCRIBER, eventId: event.id },
    });
    log("debug", "payment.created handled", { paymentId: event.data.paymentId, eventId: event.id, outcome });
  };
}
