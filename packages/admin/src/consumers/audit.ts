import { type EventHandler, log } from "@enclave/core";
import { recordEvent } from "../audit";
import type { AdminContext } from "../context";

/**
 * Subscription `audit`: every event of the app becomes one audit row. Envelopes are read
 * leniently (unknown types and versions are recorded with what can be mapped); something that
 * is not an envelope at all throws, so the bus retries it and then dead-letters it.
 */
export function auditConsumer(ctx: AdminContext): EventHandler {
  return async (event, { attempt }) => {
    const outcome = await recordEvent(ctx, event);
    if (outcome === "duplicate") log("debug", "audit: event already recorded", { eventId: event.id, type: event.type, attempt });
  };
}
