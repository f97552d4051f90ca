import { AppError, createServiceApp, type EventMetadata, Uuid, userOf } from "@enclave/core";
import type { Context } from "hono";
import * as z from "zod/mini";
import type { ProfileContext } from "./context";
import { profileManifest } from "./manifest";
import { getOwnProfile, getProfile, ProfileEnvelope, ProfilePatch, updateOwnProfile } from "./profile";

function metadataOf(c: Context, actor: string): EventMetadata {
  return { correlationId: c.get("requestId"), actor };
}

const description =
  "User profiles: avatar, phone, postal address, bio and client preferences. Every registered user gets a profile shortly after registering; the first read creates it if it has not arrived yet.";

export function createProfileApp(ctx: ProfileContext) {
  const { app, routes } = createServiceApp({
    name: "profile",
    prefix: profileManifest.prefix,
    version: "1",
    database: ctx.database,
    verifier: ctx.verifier,
    docs: { description },
  });

  routes
    .add(
      {
        method: "get",
        path: "/me",
        operationId: "getMyProfile",
        summary: "The signed-in user's profile (created on first access if it does not exist yet)",
        description: "The caller's own profile. If `user.registered` has not been processed yet, the profile is created now (publishing `profile.created`).",
        access: "user",
        responses: { 200: { description: "The profile", schema: ProfileEnvelope } },
      },
      async (c, { principal }) => {
        const { userId } = userOf(principal);
        return c.json({ profile: await getOwnProfile(ctx, userId, metadataOf(c, userId)) });
      },
    )
    .add(
      {
        method: "patch",
        path: "/me",
        operationId: "updateMyProfile",
        summary: "Change the signed-in user's profile: any of avatarUrl, phone, address, bio, preferences (null clears a field)",
        description:
          "Changes the fields sent and leaves the others alone; `null` clears a field, and `preferences` is replaced as a whole. Creates the profile if needed. Publishes `profile.updated`.",
        access: "user",
        body: ProfilePatch,
        responses: { 200: { description: "The updated profile", schema: ProfileEnvelope } },
      },
      async (c, { principal, body }) => {
        const { userId } = userOf(principal);
        return c.json({ profile: await updateOwnProfile(ctx, userId, body, metadataOf(c, userId)) });
      },
    )
    .add(
      {
        method: "get",
        path: "/:userId",
        operationId: "getProfile",
        summary: "A user's profile (ADMIN, or that user)",
        description: "The profile of the user with this id, for administrators and for that user. Never creates one.",
        access: "user",
        params: z.object({ userId: Uuid }),
        responses: {
          200: { description: "The profile", schema: ProfileEnvelope },
          403: { description: "`forbidden`: the caller is neither an ADMIN nor that user (or not a signed-in user)" },
          404: { description: "`not_found`: the user has no profile" },
        },
      },
      async (c, { principal, params }) => {
        const caller = userOf(principal);
        // Lower-case ids compare equal however the caller spelled the path.
        if (caller.role !== "ADMIN" && caller.userId.toLowerCase() !== params.userId.toLowerCase()) {
          throw new AppError("forbidden", "Only an administrator or the user may read this profile.");
        }
        return c.json({ profile: await getProfile(ctx, params.userId) });
      },
    );
  return app;
}
