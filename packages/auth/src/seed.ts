import type { Seeds } from "@enclave/core";
import type { AuthContext } from "./context";
import { ensureUser } from "./user";

export const DEFAULT_ADMIN_EMAIL = "admin@enclave.dev";
export const DEFAULT_ADMIN_PASSWORD = "enclave-admin-dev";

/**
 * Development only (API.md): an administrator with a known password. No other seed creates
 * users with known passwords.
 */
export async function seedDevelopment(ctx: AuthContext, adminPassword = DEFAULT_ADMIN_PASSWORD): Promise<void> {
  await ensureUser(
    ctx,
    { email: DEFAULT_ADMIN_EMAIL, password: adminPassword, name: "Enclave Admin", role: "ADMIN" },
    { correlationId: "seed:development", actor: null },
  );
}

export const authSeeds: Seeds<AuthContext> = { development: (ctx, options) => seedDevelopment(ctx, options.adminPassword) };
