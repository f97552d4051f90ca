import { defineJobs, inboxClaim, subscribe } from "@enclave/core";
import type { ProfileContext } from "./context";
import { profileManifest } from "./manifest";
import { createDefaultProfile } from "./profile";
import { profileInbox } from "./profile.sql";

/** What profile runs in the background. The kernel adds `outbox-sweeper` and `event-retention`. */
export const profileJobs = defineJobs(profileManifest.name, {
  /**
   * user.registered → the user's default profile. Idempotent on `detail.id` through the inbox:
   * a redelivered or replayed event changes nothing. The inbox row, the profile and its
   * profile.created outbox row are one statement.
   */
  "on-user-registered": subscribe({
    description: "Creates the default profile of every new user, once per event id",
    on: ["user.registered"],
    handle: async (ctx: ProfileContext, event, delivery) => {
      const db = (await ctx.database()).db;
      const created = await createDefaultProfile(
        db,
        ctx,
        event.data.userId,
        { correlationId: event.metadata.correlationId, actor: event.metadata.actor },
        inboxClaim(profileInbox, delivery.subscription, event.id),
      );
      if (created) await ctx.events.publish(db, [created]);
    },
  }),
});
