import { cron, defineJobs } from "@enclave/core";
import type { AuthContext } from "./context";
import { authManifest } from "./manifest";
import { pruneExpiredRefreshTokens, pruneLoginAttempts } from "./user";

/** What auth runs in the background. The kernel adds `outbox-sweeper` and `event-retention`. */
export const authJobs = defineJobs(authManifest.name, {
  "prune-expired": cron({
    description: "Deletes failed-sign-in counters whose window and lock have passed, and refresh-token families past their expiry",
    schedule: "rate(1 hour)",
    run: async (ctx: AuthContext) => {
      const loginAttempts = await pruneLoginAttempts(ctx);
      const refreshTokens = await pruneExpiredRefreshTokens(ctx);
      return { loginAttempts: loginAttempts.deleted, refreshTokens: refreshTokens.deleted, capped: refreshTokens.capped };
    },
  }),
});
