import { outboxSweeper, type ServiceModule } from "@enclave/core";
import { adminOutbox } from "./admin.sql";
import { auditConsumer } from "./consumers/audit";
import type { AdminContext } from "./context";
import { adminManifest } from "./manifest";
import { createAdminApp } from "./routes";
import { seedEssential } from "./seed";

export const adminService: ServiceModule<AdminContext> = {
  manifest: adminManifest,
  outbox: adminOutbox,
  createApp: createAdminApp,
  consumers: { audit: auditConsumer },
  crons: { "outbox-sweeper": outboxSweeper(adminOutbox) },
  seeds: { essential: (ctx) => seedEssential(ctx) },
};

export type { AdminContext } from "./context";
export { adminContextFromConfig } from "./context";
