import { parseServiceConfig } from "@enclave/core";
import { isSigningKeysJson } from "@enclave/core/keys";
import * as z from "zod/mini";

const authEnv = z.object({
  /**
   * The ES256 private key as a JWK (JSON). While the key is rotated, `{"keys": [...]}`: the first
   * signs, all are published and accepted. Local dev generates one under DATA_DIR.
   */
  AUTH_SIGNING_KEY: z
    .string()
    .check(z.refine(isSigningKeysJson, 'must be a P-256 private JWK (JSON), or {"keys": [...]} of them while rotating (the first signs)')),
  AUTH_ACCESS_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.minimum(60), z.maximum(3600)), 900),
  AUTH_REFRESH_TTL_DAYS: z._default(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(90)), 30),
  /**
   * How many trusted proxies append to X-Forwarded-For in front of the service (API Gateway counts
   * as one). 0, the default, never reads the header: the address is API Gateway's sourceIp or the
   * socket's. Sign-in failures are throttled per address.
   */
  AUTH_FORWARDED_FOR_HOPS: z._default(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(5)), 0),
});

export function readAuthConfig(env: Record<string, string | undefined> = process.env) {
  return parseServiceConfig("auth", authEnv, env);
}
export type AuthConfig = ReturnType<typeof readAuthConfig>;
