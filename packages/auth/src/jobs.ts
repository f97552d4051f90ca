import { cron, defineJobs } from "@enclave/core";
import type { AuthContext } from "./context";
import { authManifest } from "./manifest";
import { pruneLoginAttempts } from "./user";

/** What auth runs in the background. The kernel adds `outbox-sweeper` and `event-retention`. */
export const authJobs = defineJobs(authManifest.name, {
  "prune-login-attempts": cron({
    description: "Deletes failed-sign-in counters whose window and lock have passed",
    schedule: "rate(1 hour)",
    run: (ctx: AuthContext) => pruneLoginAttempts(ctx),
  }),
});
