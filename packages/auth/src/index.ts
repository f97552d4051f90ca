import { outboxSweeper, type ServiceModule } from "@enclave/core";
import { authOutbox } from "./auth.sql";
import type { AuthContext } from "./context";
import { authManifest } from "./manifest";
import { createAuthApp } from "./routes";
import { seedDevelopment } from "./seed";
import { pruneLoginAttempts } from "./user";

export const authService: ServiceModule<AuthContext> = {
  manifest: authManifest,
  outbox: authOutbox,
  createApp: createAuthApp,
  consumers: {},
  crons: {
    "outbox-sweeper": outboxSweeper(authOutbox),
    "prune-login-attempts": (ctx) => () => pruneLoginAttempts(ctx),
  },
  seeds: { development: (ctx, options) => seedDevelopment(ctx, options.adminPassword) },
};

export type { AuthContext } from "./context";
export { authContextFromConfig } from "./context";
export { generateSigningJwk } from "./tokens";
