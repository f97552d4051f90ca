import { APP, defineJobs, log, subscribe } from "@enclave/core";
import { recordEvent } from "./audit";
import type { AdminContext } from "./context";
import { adminManifest } from "./manifest";

/** What admin runs in the background. The kernel adds `outbox-sweeper` and `event-retention`. */
export const adminJobs = defineJobs(adminManifest.name, {
  /**
   * Every event of the app becomes one audit row. Envelopes are read leniently (unknown types and
   * versions are recorded with what can be mapped); something that is not an envelope at all
   * throws, so the bus retries it and then dead-letters it.
   */
  audit: subscribe({
    description: "Records every event of the app in the audit log, once per event id",
    // One rule for every service's events, including ones added later.
    pattern: { source: [{ prefix: `${APP}.` }] },
    handle: async (ctx: AdminContext, event, { attempt }) => {
      const outcome = await recordEvent(ctx, event);
      if (outcome === "duplicate") log("debug", "audit: event already recorded", { eventId: event.id, type: event.type, attempt });
    },
  }),
});
