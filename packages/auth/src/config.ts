import { parseServiceConfig, privateJwkVariable } from "@enclave/core";
import * as z from "zod/mini";

const authEnv = z.object({
  /** The ES256 private key as a JWK (JSON). Local dev generates one under DATA_DIR. */
  AUTH_SIGNING_KEY: privateJwkVariable,
  AUTH_ACCESS_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.minimum(60), z.maximum(3600)), 900),
  AUTH_REFRESH_TTL_DAYS: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(90)), 30),
});

export function readAuthConfig(env: Record<string, string | undefined> = process.env) {
  return parseServiceConfig("auth", authEnv, env);
}
export type AuthConfig = ReturnType<typeof readAuthConfig>;
