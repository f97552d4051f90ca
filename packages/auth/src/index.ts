import { defineService } from "@enclave/core";
import type { AuthContext } from "./context";
import { authJobs } from "./jobs";
import { authManifest } from "./manifest";
import { createAuthApp } from "./routes";
import { authSeeds } from "./seed";

export const authService = defineService<AuthContext>({
  manifest: authManifest,
  jobs: authJobs,
  createApp: createAuthApp,
  seeds: authSeeds,
});

export type { AuthContext } from "./context";
export { authContextFromConfig } from "./context";
