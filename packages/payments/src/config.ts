import { parseServiceConfig, privateJwkVariable } from "@enclave/core";
import * as z from "zod/mini";

const paymentsEnv = z.object({
  /** Base URL auth is served at (the API's URL in the cloud); recipients are looked up there. */
  AUTH_URL: z._default(z.url(), "http://localhost:3000"),
  /** The stage's service key (a P-256 private JWK, JSON) that signs this service's calls to auth. */
  SERVICE_SIGNING_KEY: privateJwkVariable,
  /** Per attempt; a lookup makes at most two. */
  AUTH_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.minimum(100), z.maximum(10_000)), 2_000),
  /** The payment-provider adapter. Only the deterministic simulator exists so far. */
  PAYMENT_PROVIDER: z._default(z.enum(["simulator"]), "simulator"),
});

export function readPaymentsConfig(env: Record<string, string | undefined> = process.env) {
  return parseServiceConfig("payments", paymentsEnv, env);
}
export type PaymentsConfig = ReturnType<typeof readPaymentsConfig>;
