import type { JSONWebKeySet, JWK } from "jose";
import { AppError } from "../errors";
import { uuidv7 } from "../ids";
import type { Principal, TokenVerifier } from "./types";

/**
 * Service identity. A service calling another one mints a short-lived token with the stage's
 * service key (a private JWK from configuration, never sent anywhere); the callee checks it
 * against the matching public JWKS. Nothing secret travels over the wire, and a user's access
 * token is never forwarded: the callee sees the calling service, not the user behind it.
 *
 * Claims: `iss` = `service:<caller>`, `sub` = `<caller>`, `aud` = `<callee>`, `iat`, `exp`
 * (at most 60 s later) and a unique `jti`. The header's `typ` is `service+jwt`, so a service
 * token can never pass for an access token or the other way round.
 */
export const SERVICE_TOKEN_ALG = "ES256";
export const SERVICE_TOKEN_TYPE = "service+jwt";
export const SERVICE_TOKEN_TTL_SECONDS = 60;
/** Clock skew tolerated between caller and callee. */
const CLOCK_TOLERANCE_SECONDS = 5;

const serviceName = /^[a-z][a-z0-9-]{0,39}$/;

export const serviceIssuer = (service: string) => `service:${service}`;

export interface ServiceTokenSigner {
  /** The calling service (`sub`). */
  readonly service: string;
  /** A fresh token for calls to `audience` (the callee's service name). */
  mint(audience: string): Promise<string>;
}

export interface ServiceTokenSignerOptions {
  /** This service's name. */
  service: string;
  /** The stage's service key: a P-256 private JWK. */
  privateJwk: JWK;
  /** Lifetime, at most 60 s. */
  ttlSeconds?: number;
  /** Test seam: the current time in ms. */
  now?: () => number;
}

export function createServiceTokenSigner(options: ServiceTokenSignerOptions): ServiceTokenSigner {
  if (!serviceName.test(options.service)) throw new Error(`invalid service name ${options.service}`);
  const { privateJwk } = options;
  if (privateJwk.kty !== "EC" || privateJwk.crv !== "P-256" || !privateJwk.d) throw new Error("the service signing key must be a P-256 private JWK (ES256)");
  const ttl = Math.min(options.ttlSeconds ?? SERVICE_TOKEN_TTL_SECONDS, SERVICE_TOKEN_TTL_SECONDS);
  const now = options.now ?? Date.now;
  let key: ReturnType<typeof import("jose").importJWK> | undefined;
  return {
    service: options.service,
    async mint(audience) {
      if (!serviceName.test(audience)) throw new Error(`invalid audience ${audience}`);
      // jose loads with the first call to another service, not on every cold start.
      const [{ importJWK }, { SignJWT }] = await Promise.all([import("jose/key/import"), import("jose/jwt/sign")]);
      key ??= importJWK({ ...privateJwk, alg: SERVICE_TOKEN_ALG }, SERVICE_TOKEN_ALG);
      const issuedAt = Math.floor(now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: SERVICE_TOKEN_ALG, typ: SERVICE_TOKEN_TYPE, ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) })
        .setIssuer(serviceIssuer(options.service))
        .setSubject(options.service)
        .setAudience(audience)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttl)
        .setJti(uuidv7())
        .sign(await key);
    },
  };
}

export interface ServiceTokenVerifierOptions {
  /** This service's name: tokens must be addressed to it. */
  audience: string;
  /** The stage's public service keys. */
  jwks: JSONWebKeySet;
  /** When set, only these calling services are admitted. */
  allowedCallers?: string[];
  /** Test seam: the current time in ms. */
  now?: () => number;
}

const rejected = () => new AppError("unauthorized", "The access token is invalid or expired.");

/**
 * Verifies service tokens addressed to this service: ES256 only, `typ` service+jwt, this
 * audience, an `iss` that names the same service as `sub`, and a lifetime of at most 60 s.
 * Gives the principal `{kind: "service", service}`; anything else is 401.
 */
export function createServiceTokenVerifier(options: ServiceTokenVerifierOptions): TokenVerifier {
  let keys: ReturnType<typeof import("jose").createLocalJWKSet> | undefined;
  const allowed = options.allowedCallers ? new Set(options.allowedCallers) : undefined;
  return {
    async verify(token): Promise<Principal> {
      let payload: Record<string, unknown>;
      try {
        // Only a token that is not a user's reaches here: jose loads then, not on every cold start.
        const [{ createLocalJWKSet }, { jwtVerify }] = await Promise.all([import("jose/jwks/local"), import("jose/jwt/verify")]);
        keys ??= createLocalJWKSet(options.jwks);
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: [SERVICE_TOKEN_ALG],
          typ: SERVICE_TOKEN_TYPE,
          audience: options.audience,
          requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti"],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          ...(options.now ? { currentDate: new Date(options.now()) } : {}),
        }));
      } catch {
        throw rejected();
      }
      const { sub, iss, iat, exp } = payload;
      if (typeof sub !== "string" || !serviceName.test(sub) || iss !== serviceIssuer(sub)) throw rejected();
      // A validly signed token with a long lifetime is refused too: service tokens are short-lived by contract.
      if (typeof iat !== "number" || typeof exp !== "number" || exp - iat > SERVICE_TOKEN_TTL_SECONDS) throw rejected();
      if (iat > (options.now?.() ?? Date.now()) / 1000 + CLOCK_TOLERANCE_SECONDS) throw rejected();
      if (allowed && !allowed.has(sub)) throw new AppError("forbidden", "This service may not call this one.");
      return { kind: "service", service: sub };
    },
  };
}
