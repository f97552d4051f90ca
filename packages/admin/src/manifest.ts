import { APP } from "@enclave/core/events/envelope";
import { defineManifest } from "@enclave/core/service";

export const adminManifest = defineManifest({
  name: "admin",
  prefix: "/admin",
  publishes: ["config.changed"],
  subscriptions: [
    {
      name: "audit",
      description: "Records every event of the app in the audit log, once per event id",
      // One rule for every service's events, including ones added later.
      pattern: { source: [{ prefix: `${APP}.` }] },
    },
  ],
  crons: [{ name: "outbox-sweeper", description: "Publishes outbox rows a crashed request left behind", schedule: "rate(1 minute)" }],
});
