import { type ContextOverrides, contextFromConfig, type ServiceContext } from "@enclave/core";
import { importSigningKey, type SigningKey, type TokenSettings } from "@enclave/core/http/access-token";
import { type PublicJwk, parsePrivateJwk, publicJwkOf } from "@enclave/core/keys";
import { authInbox, authOutbox } from "./auth.sql";
import type { AuthConfig } from "./config";
import { DEFAULT_SCRYPT_LOG_N } from "./password";

export interface AuthContext extends ServiceContext {
  signingKey(): Promise<SigningKey>;
  /** What GET /auth/.well-known/jwks.json publishes; needs no private-key import. */
  publicJwk: PublicJwk;
  tokens: TokenSettings;
  refreshTtlSeconds: number;
  /** log2 of scrypt's N; 17 in every deployed stage (tests lower it to stay fast). */
  passwordCost: number;
  throttle: { maxFailures: number; windowSeconds: number; lockSeconds: number };
}

export type AuthOverrides = ContextOverrides & Partial<Omit<AuthContext, keyof ServiceContext>>;

export const defaultThrottle = { maxFailures: 5, windowSeconds: 15 * 60, lockSeconds: 15 * 60 };

/** The auth context of a deployed function: keys from configuration, nothing connected yet. */
export function authContextFromConfig(config: AuthConfig, overrides: AuthOverrides = {}): AuthContext {
  const { database, bus, verifier, ...rest } = overrides;
  const signingJwk = parsePrivateJwk("AUTH_SIGNING_KEY", config.AUTH_SIGNING_KEY);
  let key: Promise<SigningKey> | undefined;
  const signingKey = () => {
    key ??= importSigningKey(signingJwk);
    return key;
  };
  const publicJwk = publicJwkOf(signingJwk);
  // Auth verifies its own tokens with its own public key: no JWKS fetch.
  const base = contextFromConfig(config, { outbox: authOutbox, inbox: authInbox, userKeys: { keys: [publicJwk] }, database, bus, verifier });
  return {
    ...base,
    signingKey,
    publicJwk,
    tokens: { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtlSeconds: config.AUTH_ACCESS_TTL_SECONDS },
    refreshTtlSeconds: config.AUTH_REFRESH_TTL_DAYS * 86_400,
    passwordCost: DEFAULT_SCRYPT_LOG_N,
    throttle: defaultThrottle,
    ...rest,
  };
}
