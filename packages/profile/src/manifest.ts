import { APP, eventSource } from "@enclave/core/events/envelope";
import { defineManifest } from "@enclave/core/service";

export const profileManifest = defineManifest({
  name: "profile",
  prefix: "/profiles",
  publishes: ["profile.created", "profile.updated"],
  subscriptions: [
    {
      name: "on-user-registered",
      description: "Creates the default profile of every new user, once per event id",
      pattern: { source: [eventSource(APP, "auth")], "detail-type": ["user.registered"] },
    },
  ],
  crons: [{ name: "outbox-sweeper", description: "Publishes outbox rows a crashed request left behind", schedule: "rate(1 minute)" }],
});
