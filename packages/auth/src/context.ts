import { contextFromConfig, createTokenVerifier, type ServiceContext } from "@enclave/core";
import { createServiceTokenVerifier } from "@enclave/core/http/service-token";
import type { JWK } from "jose";
import type { AuthConfig } from "./config";
import { authManifest } from "./manifest";
import { DEFAULT_SCRYPT_LOG_N } from "./password";
import { importSigningKey, publicJwkOf, type SigningKey, type TokenSettings } from "./tokens";

export interface AuthContext extends ServiceContext {
  signingKey(): Promise<SigningKey>;
  /** What GET /auth/.well-known/jwks.json publishes; needs no private-key import. */
  publicJwk: JWK;
  tokens: TokenSettings;
  refreshTtlSeconds: number;
  /** log2 of scrypt's N; 17 in every deployed stage (tests lower it to stay fast). */
  passwordCost: number;
  throttle: { maxFailures: number; windowSeconds: number; lockSeconds: number };
}

export const defaultThrottle = { maxFailures: 5, windowSeconds: 15 * 60, lockSeconds: 15 * 60 };

/** The auth context of a deployed function: keys from configuration, nothing connected yet. */
export function authContextFromConfig(config: AuthConfig, overrides: Partial<AuthContext> = {}): AuthContext {
  const signingJwk = JSON.parse(config.AUTH_SIGNING_KEY) as JWK;
  let key: Promise<SigningKey> | undefined;
  const signingKey = () => {
    key ??= importSigningKey(signingJwk);
    return key;
  };
  const publicJwk = publicJwkOf(signingJwk);
  // Other services (payments looking up a recipient) call with service tokens addressed to "auth".
  const serviceTokens = config.SERVICE_PUBLIC_JWKS
    ? createServiceTokenVerifier({ audience: authManifest.name, jwks: JSON.parse(config.SERVICE_PUBLIC_JWKS) })
    : undefined;
  const base = contextFromConfig(config, {
    // Auth verifies its own tokens with its own public key: no JWKS fetch.
    verifier: createTokenVerifier({
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      jwks: { keys: [publicJwk] },
      ...(serviceTokens ? { serviceTokens } : {}),
    }),
    ...overrides,
  });
  return {
    ...base,
    signingKey,
    publicJwk,
    tokens: { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtlSeconds: config.AUTH_ACCESS_TTL_SECONDS },
    refreshTtlSeconds: config.AUTH_REFRESH_TTL_DAYS * 86_400,
    passwordCost: DEFAULT_SCRYPT_LOG_N,
    throttle: defaultThrottle,
    ...overrides,
  };
}
