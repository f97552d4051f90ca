import { defineService } from "@enclave/core";
import type { ProfileContext } from "./context";
import { profileJobs } from "./jobs";
import { profileManifest } from "./manifest";
import { createProfileApp } from "./routes";

export const profileService = defineService<ProfileContext>({
  manifest: profileManifest,
  jobs: profileJobs,
  createApp: createProfileApp,
  // Profiles come from user.registered (seeded users included): nothing to seed here.
  seeds: {},
});

export type { ProfileContext } from "./context";
export { profileContextFromConfig } from "./context";
