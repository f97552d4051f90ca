import { outboxSweeper, type ServiceModule } from "@enclave/core";
import { onUserRegistered } from "./consumers/on-user-registered";
import type { ProfileContext } from "./context";
import { profileManifest } from "./manifest";
import { profileOutbox } from "./profile.sql";
import { createProfileApp } from "./routes";

export const profileService: ServiceModule<ProfileContext> = {
  manifest: profileManifest,
  outbox: profileOutbox,
  createApp: createProfileApp,
  consumers: { "on-user-registered": onUserRegistered },
  crons: { "outbox-sweeper": outboxSweeper(profileOutbox) },
  // Profiles come from user.registered (seeded users included): nothing to seed here.
  seeds: {},
};

export type { ProfileContext } from "./context";
export { profileContextFromConfig } from "./context";
