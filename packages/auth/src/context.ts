import { type ContextOverrides, contextFromConfig, type ServiceContext } from "@enclave/core";
import { importSigningKey, type SigningKey, type TokenSettings } from "@enclave/core/http/access-token";
import { type PublicJwk, parseSigningKeys, publicJwkOf } from "@enclave/core/keys";
import { authInbox, authOutbox } from "./auth.sql";
import type { AuthConfig } from "./config";
import { DEFAULT_SCRYPT_LOG_N } from "./password";

export interface AuthContext extends ServiceContext {
  signingKey(): Promise<SigningKey>;
  /** The signing key's public half; needs no private-key import. */
  publicJwk: PublicJwk;
  /**
   * During a key rotation, the other keys' public halves: published beside `publicJwk` in the
   * JWKS and accepted by auth itself (the next key before it signs, the previous one after).
   */
  morePublicJwks?: PublicJwk[];
  tokens: TokenSettings;
  refreshTtlSeconds: number;
  /** log2 of scrypt's N; 17 in every deployed stage (tests lower it to stay fast). */
  passwordCost: number;
  /** Failed sign-ins per account (known or not). */
  throttle: Throttle;
  /** Failed sign-ins per source address (an IPv6 /64), whatever the accounts tried. */
  addressThrottle: Throttle;
  /** AUTH_FORWARDED_FOR_HOPS: trusted proxies appending to X-Forwarded-For (0: never read it). */
  forwardedForHops: number;
}

export interface Throttle {
  maxFailures: number;
  windowSeconds: number;
  lockSeconds: number;
}

export type AuthOverrides = ContextOverrides & Partial<Omit<AuthContext, keyof ServiceContext>>;

export const defaultThrottle: Throttle = { maxFailures: 5, windowSeconds: 15 * 60, lockSeconds: 15 * 60 };
/**
 * One address may fail more often than one account: several people may sign in from behind one
 * NAT. Twenty failures in 15 minutes is far beyond typing mistakes and far below what credential
 * stuffing needs.
 */
export const defaultAddressThrottle: Throttle = { maxFailures: 20, windowSeconds: 15 * 60, lockSeconds: 15 * 60 };

/** The auth context of a deployed function: keys from configuration, nothing connected yet. */
export function authContextFromConfig(config: AuthConfig, overrides: AuthOverrides = {}): AuthContext {
  const { database, bus, verifier, ...rest } = overrides;
  const { signer, keys } = parseSigningKeys("AUTH_SIGNING_KEY", config.AUTH_SIGNING_KEY);
  let key: Promise<SigningKey> | undefined;
  const signingKey = () => {
    key ??= importSigningKey(signer);
    return key;
  };
  const publicJwk = publicJwkOf(signer);
  const morePublicJwks = keys.slice(1).map(publicJwkOf);
  // Auth verifies its own tokens with its own public keys: no JWKS fetch.
  const base = contextFromConfig(config, {
    outbox: authOutbox,
    inbox: authInbox,
    userKeys: { keys: [publicJwk, ...morePublicJwks] },
    database,
    bus,
    verifier,
  });
  return {
    ...base,
    signingKey,
    publicJwk,
    morePublicJwks,
    tokens: { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTtlSeconds: config.AUTH_ACCESS_TTL_SECONDS },
    refreshTtlSeconds: config.AUTH_REFRESH_TTL_DAYS * 86_400,
    passwordCost: DEFAULT_SCRYPT_LOG_N,
    throttle: defaultThrottle,
    addressThrottle: defaultAddressThrottle,
    forwardedForHops: config.AUTH_FORWARDED_FOR_HOPS,
    ...rest,
  };
}
