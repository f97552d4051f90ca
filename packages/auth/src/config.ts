import { parseCommonConfig, parseEnv } from "@enclave/core";
import { isJwksJson } from "@enclave/core/http/service-token";
import * as z from "zod/mini";

const authEnv = z.object({
  /** The ES256 private key as a JWK (JSON). Local dev generates one under DATA_DIR. */
  AUTH_SIGNING_KEY: z.string().check(z.minLength(2)),
  AUTH_ACCESS_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.minimum(60), z.maximum(3600)), 900),
  AUTH_REFRESH_TTL_DAYS: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(90)), 30),
  /**
   * The stage's public service keys (a JWKS document). When set, other services may call the
   * routes open to services (user lookups) with their short-lived service tokens.
   */
  SERVICE_PUBLIC_JWKS: z.optional(z.string().check(z.refine(isJwksJson, "must be a JWKS document (JSON with a non-empty keys array)"))),
});

export function readAuthConfig(env: Record<string, string | undefined> = process.env) {
  return { ...parseCommonConfig("auth", env), ...parseEnv(authEnv, env) };
}
export type AuthConfig = ReturnType<typeof readAuthConfig>;
