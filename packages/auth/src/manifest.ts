import { defineManifest } from "@enclave/core/service";

export const authManifest = defineManifest({
  name: "auth",
  prefix: "/auth",
  publishes: ["user.registered", "user.role_changed"],
  subscriptions: [],
  crons: [
    { name: "outbox-sweeper", description: "Publishes outbox rows a crashed request left behind", schedule: "rate(1 minute)" },
    { name: "prune-login-attempts", description: "Deletes failed-sign-in counters whose window and lock have passed", schedule: "rate(1 hour)" },
  ],
});
