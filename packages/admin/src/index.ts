import { defineService } from "@enclave/core";
import type { AdminContext } from "./context";
import { adminJobs } from "./jobs";
import { adminManifest } from "./manifest";
import { createAdminApp } from "./routes";
import { adminSeeds } from "./seed";

export const adminService = defineService<AdminContext>({
  manifest: adminManifest,
  jobs: adminJobs,
  createApp: createAdminApp,
  seeds: adminSeeds,
});

export type { AdminContext } from "./context";
export { adminContextFromConfig } from "./context";
