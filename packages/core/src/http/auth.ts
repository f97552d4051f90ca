import { createPublicKey, type KeyObject, verify as verifySignature } from "node:crypto";
import type { Context } from "hono";
import type { JSONWebKeySet, JWTVerifyGetKey } from "jose";
import { AppError } from "../errors";
import type { EventMetadata } from "../events/envelope";
import { uuidPattern } from "../ids";
import { type AppEnv, type Principal, type Role, roles, type TokenVerifier } from "./types";

/**
 * Who may call a route: anyone, any signed-in user, or only the listed roles. `service`
 * admits other services of this app (their short-lived service tokens).
 */
export type Access = "public" | "user" | { roles: Role[]; service?: boolean };

/** Access tokens are signed with ES256 only: pinning the algorithm closes algorithm-confusion attacks. */
export const ACCESS_TOKEN_ALG = "ES256";

export interface VerifierOptions {
  issuer: string;
  audience: string;
  /** Public keys: a JWKS document, or the URL of the auth service's JWKS. */
  jwks: JSONWebKeySet | URL;
  /** Verifies service tokens (another service calling this one); optional. */
  serviceTokens?: TokenVerifier;
  /**
   * The tenant this service serves: only tokens whose `tid` claim is this tenant are accepted.
   * Without it, a token carrying any `tid` is refused: it was minted for a tenant's deployment.
   */
  tenant?: string;
  /** With a JWKS URL: how long fetched keys are used before they are fetched again (10 minutes). */
  jwksCacheMaxAgeMs?: number;
  /** With a JWKS URL: the least time between two fetches that a token with an unknown kid triggers (30 seconds). */
  jwksCooldownMs?: number;
}

/**
 * True when verification failed because the signing keys could not be fetched (the JWKS endpoint
 * timed out, refused the connection, answered non-200 or not a JWKS): the caller's token may be
 * fine, so that is 503, not 401. jose's own errors about the token carry an `ERR_*` code.
 */
function keysUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID" || code === "ERR_JOSE_GENERIC") return true;
  return !(typeof code === "string" && code.startsWith("ERR_"));
}

const invalidToken = () => new AppError("unauthorized", "The access token is invalid or expired.");
const requiredClaims = ["sub", "exp", "iat", "jti"] as const;
const CLOCK_TOLERANCE_SECONDS = 5;
const base64url = /^[A-Za-z0-9_-]+$/;

/** A JSON object from a base64url token segment; undefined for anything else. */
function segmentObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

interface VerificationKey {
  kid: unknown;
  key: KeyObject;
}

/**
 * The keys of a JWKS document that may verify ES256, as a JWKS consumer selects them (EC P-256,
 * `alg`, `use` and `key_ops` compatible when present). Keys that do not import are skipped.
 */
function es256Keys(jwks: JSONWebKeySet): VerificationKey[] {
  const keys: VerificationKey[] = [];
  for (const jwk of jwks.keys) {
    if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") continue;
    if (typeof jwk.alg === "string" && jwk.alg !== ACCESS_TOKEN_ALG) continue;
    if (typeof jwk.use === "string" && jwk.use !== "sig") continue;
    if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes("verify")) continue;
    try {
      keys.push({ kid: jwk.kid, key: createPublicKey({ key: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, format: "jwk" }) });
    } catch {
      // not a point on the curve: it verifies nothing
    }
  }
  return keys;
}

/**
 * Verifies a compact JWS signed with ES256 by one of `keys` (those matching the header's kid),
 * then the claims; the payload when all hold, undefined otherwise. node:crypto does it directly:
 * no JOSE library or WebCrypto to load on a cold start.
 */
function verifyEs256(token: string, keys: VerificationKey[], options: VerifierOptions): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [encodedHeader = "", encodedPayload = "", encodedSignature = ""] = parts;
  // Buffer's decoder skips characters outside the alphabet; a token with any is not one we signed.
  if (!base64url.test(encodedHeader) || !base64url.test(encodedPayload) || !base64url.test(encodedSignature)) return undefined;
  const header = segmentObject(encodedHeader);
  // The algorithm is pinned, and no critical extension is understood.
  if (!header || header.alg !== ACCESS_TOKEN_ALG || header.crit !== undefined) return undefined;
  const signature = Buffer.from(encodedSignature, "base64url");
  if (signature.length !== 64) return undefined;
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, "ascii");
  const candidates = typeof header.kid === "string" ? keys.filter((k) => k.kid === header.kid) : keys;
  if (!candidates.some(({ key }) => verifySignature("sha256", signed, { key, dsaEncoding: "ieee-p1363" }, signature))) return undefined;
  const payload = segmentObject(encodedPayload);
  if (!payload) return undefined;
  for (const claim of requiredClaims) if (payload[claim] === undefined) return undefined;
  if (payload.iss !== options.issuer) return undefined;
  const aud = payload.aud;
  if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience)))) return undefined;
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.iat !== "number" || typeof payload.exp !== "number") return undefined;
  if (payload.exp <= now - CLOCK_TOLERANCE_SECONDS) return undefined;
  if (payload.nbf !== undefined && (typeof payload.nbf !== "number" || payload.nbf > now + CLOCK_TOLERANCE_SECONDS)) return undefined;
  return payload;
}

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const jwks = options.jwks;
  let verifyToken: (token: string) => Promise<Record<string, unknown>>;
  if (jwks instanceof URL) {
    // Fetched keys need caching, refetching and timeouts: jose does that, loaded with the first token.
    let keys: JWTVerifyGetKey | undefined;
    verifyToken = async (token) => {
      const [{ createRemoteJWKSet }, { jwtVerify }] = await Promise.all([import("jose/jwks/remote"), import("jose/jwt/verify")]);
      // A token naming a kid the cached set lacks makes jose fetch the set again: that is how a
      // verifier learns of a rotated-in key before its cache runs out. The cooldown bounds how often
      // tokens with made-up kids can make it fetch (once per cooldown, whatever the traffic).
      keys ??= createRemoteJWKSet(jwks, {
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 10 * 60_000,
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        timeoutDuration: 3_000,
      });
      try {
        const { payload } = await jwtVerify(token, keys, {
          algorithms: [ACCESS_TOKEN_ALG],
          issuer: options.issuer,
          audience: options.audience,
          requiredClaims: [...requiredClaims],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        });
        return payload as Record<string, unknown>;
      } catch (error) {
        if (keysUnavailable(error)) throw new AppError("unavailable", "Cannot fetch the token signing keys.");
        throw invalidToken();
      }
    };
  } else {
    if (!Array.isArray(jwks?.keys)) throw new TypeError("JSON Web Key Set malformed");
    // Imported on the first token, not when the app is built: routes without a token never need them.
    let keys: VerificationKey[] | undefined;
    verifyToken = async (token) => {
      keys ??= es256Keys(jwks);
      const payload = verifyEs256(token, keys, options);
      if (!payload) throw invalidToken();
      return payload;
    };
  }
  return {
    async verify(token) {
      let payload: Record<string, unknown>;
      try {
        payload = await verifyToken(token);
      } catch (error) {
        if (error instanceof AppError && error.code === "unavailable") throw error;
        if (options.serviceTokens) return options.serviceTokens.verify(token);
        throw invalidToken();
      }
      const role = payload.role;
      // `sub` is a user id (a UUID); anything else would reach the database as a malformed id.
      if (typeof payload.sub !== "string" || !uuidPattern.test(payload.sub) || !roles.includes(role as Role)) throw invalidToken();
      // A user id means something only in its tenant's databases: another tenant's token is no token here.
      if (payload.tid !== options.tenant) throw invalidToken();
      return { kind: "user", userId: payload.sub, role: role as Role, tokenId: String(payload.jti) };
    },
  };
}

/** Reads `Authorization: Bearer <token>` and applies a route's access rule. */
export async function requireAccess(c: Context<AppEnv>, access: Access): Promise<Principal | undefined> {
  if (access === "public") return undefined;
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
  if (!match?.[1]) throw new AppError("unauthorized", "A bearer access token is required.");
  const principal = await c.get("verifier").verify(match[1]);
  c.set("principal", principal);
  if (access === "user") {
    if (principal.kind !== "user") throw new AppError("forbidden", "This route is for signed-in users.");
    return principal;
  }
  const allowed = principal.kind === "service" ? access.service === true : access.roles.includes(principal.role);
  if (!allowed) throw new AppError("forbidden");
  return principal;
}

/** The signed-in user of a route whose access is "user" or a role list. */
export function userOf(principal: Principal | undefined): Extract<Principal, { kind: "user" }> {
  if (principal?.kind !== "user") throw new AppError("forbidden", "This route is for signed-in users.");
  return principal;
}

/** Event metadata of a request: its id as the correlation id, the signed-in user as the actor. */
export function eventMetadataOf(c: Context<AppEnv>): EventMetadata {
  const principal = c.get("principal");
  return { correlationId: c.get("requestId"), actor: principal?.kind === "user" ? principal.userId : null };
}
