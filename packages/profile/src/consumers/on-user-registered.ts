import { consumeOnce, type EventEnvelope, type EventHandler, parseEvent } from "@enclave/core";
import type { ProfileContext } from "../context";
import { createDefaultProfile, relayProfileEvents } from "../profile";
import { profileInbox } from "../profile.sql";

export const SUBSCRIBER = "on-user-registered";

/**
 * user.registered → the user's default profile. Idempotent on `detail.id` through the inbox:
 * a redelivered or replayed event changes nothing. An envelope that does not parse, or a
 * version this consumer does not know, throws, so the bus retries and then dead-letters it.
 */
export function onUserRegistered(ctx: ProfileContext): EventHandler {
  return async (detail) => {
    const event = parseEvent(detail, "user.registered");
    const db = (await ctx.database()).db;
    let created: EventEnvelope | undefined;
    await consumeOnce(db, profileInbox, SUBSCRIBER, event.id, async (tx) => {
      created = await createDefaultProfile(tx, ctx, event.data.userId, { correlationId: event.metadata.correlationId, actor: event.metadata.actor });
    });
    if (created) await relayProfileEvents(ctx, [created]);
  };
}
