import { defineService } from "@enclave/core";
import type { ProfileContext } from "./context";
import { profileJobs } from "./jobs";
import { profileManifest } from "./manifest";
import { createProfileApp } from "./routes";
import { profileSeeds } from "./seed";

export const profileService = defineService<ProfileContext>({
  manifest: profileManifest,
  jobs: profileJobs,
  createApp: createProfileApp,
  seeds: profileSeeds,
});

export type { ProfileContext } from "./context";
export { profileContextFromConfig } from "./context";
