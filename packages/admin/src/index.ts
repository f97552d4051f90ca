import { defineService } from "@enclave/core";
import type { AdminContext } from "./context";
import { adminJobs } from "./jobs";
import { adminManifest } from "./manifest";
import { createAdminApp } from "./routes";
import { seedEssential } from "./seed";

export const adminService = defineService<AdminContext>({
  manifest: adminManifest,
  jobs: adminJobs,
  createApp: createAdminApp,
  seeds: { essential: (ctx) => seedEssential(ctx) },
});

export type { AdminContext } from "./context";
export { adminContextFromConfig } from "./context";
