import { ConfigError, parseServiceConfig, privateJwkVariable } from "@enclave/core";
import * as z from "zod/mini";

/** Payment-provider adapters this build has (provider.ts). `simulator` moves no money. */
export const paymentProviders = ["simulator"] as const;
export type PaymentProviderName = (typeof paymentProviders)[number];

/**
 * The stage that handles real money. Deployment settings (infra/stage.ts) and sst.config.ts
 * treat the stage named `production` as production (retained, protected, no development seed);
 * its functions receive that name as STAGE.
 */
export const PRODUCTION_STAGE = "production";

const paymentsEnv = z.object({
  /** Base URL auth is served at (the API's URL in the cloud); recipients are looked up there. */
  AUTH_URL: z._default(z.url(), "http://localhost:3000"),
  /** The stage's service key (a P-256 private JWK, JSON) that signs this service's calls to auth. */
  SERVICE_SIGNING_KEY: privateJwkVariable,
  /** Per attempt; a lookup makes at most two. */
  AUTH_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.minimum(100), z.maximum(10_000)), 2_000),
  /** The payment-provider adapter. The default, the simulator, is refused on the production stage. */
  PAYMENT_PROVIDER: z._default(z.enum(paymentProviders), "simulator"),
});

export function readPaymentsConfig(env: Record<string, string | undefined> = process.env) {
  // A simulated payment completes without moving money: on production that would tell users
  // they paid when nothing happened, so the service does not start at all.
  const faked =
    env.STAGE === PRODUCTION_STAGE && (env.PAYMENT_PROVIDER || "simulator") === "simulator"
      ? `PAYMENT_PROVIDER: ${env.PAYMENT_PROVIDER ? "is" : "is not set, so it defaults to"} "simulator", which fakes payments and is refused on the ${PRODUCTION_STAGE} stage (STAGE=${PRODUCTION_STAGE}); set it to a real payment provider's adapter`
      : undefined;
  try {
    const config = parseServiceConfig("payments", paymentsEnv, env);
    if (faked) throw new ConfigError([faked], "payments");
    return config;
  } catch (error) {
    // Reported with the other problems, if any: one failed start-up shows everything to fix.
    if (faked && error instanceof ConfigError && !error.problems.includes(faked)) throw new ConfigError([...error.problems, faked], "payments");
    throw error;
  }
}
export type PaymentsConfig = ReturnType<typeof readPaymentsConfig>;
