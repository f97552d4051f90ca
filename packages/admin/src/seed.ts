import type { Seeds } from "@enclave/core";
import type { AdminContext } from "./context";
import { addConfigIfAbsent } from "./system-config";

/** Settings every stage starts with. Admins may change them; the seed never overwrites a key. */
export const essentialConfig: { key: string; value: unknown; description: string }[] = [
  { key: "maintenance.enabled", value: false, description: "While true, clients show a maintenance notice." },
  { key: "payments.default_currency", value: "USD", description: "Currency clients preselect for a new payment (ISO-4217)." },
  { key: "support.email", value: "support@enclave.dev", description: "Where clients send users who need help." },
];

/**
 * Essential seed (every stage), idempotent: inserts the keys that are missing, each with its
 * audit row and config.changed, and leaves existing keys, changed by an admin or not, alone.
 */
export async function seedEssential(ctx: AdminContext): Promise<void> {
  for (const item of essentialConfig) {
    await addConfigIfAbsent(
      ctx,
      item.key,
      { value: item.value, description: item.description },
      { userId: null, correlationId: "seed:essential", ipAddress: null, userAgent: null },
    );
  }
}

export const adminSeeds: Seeds<AdminContext> = { essential: (ctx) => seedEssential(ctx) };
