import type { Context } from "hono";
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from "jose";
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

export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const remote = options.jwks instanceof URL;
  // A token naming a kid the cached set lacks makes jose fetch the set again: that is how a
  // verifier learns of a rotated-in key before its cache runs out. The cooldown bounds how often
  // tokens with made-up kids can make it fetch (once per cooldown, whatever the traffic).
  const keys: JWTVerifyGetKey =
    options.jwks instanceof URL
      ? createRemoteJWKSet(options.jwks, {
          cacheMaxAge: options.jwksCacheMaxAgeMs ?? 10 * 60_000,
          cooldownDuration: options.jwksCooldownMs ?? 30_000,
          timeoutDuration: 3_000,
        })
      : createLocalJWKSet(options.jwks);
  return {
    async verify(token) {
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          algorithms: [ACCESS_TOKEN_ALG],
          issuer: options.issuer,
          audience: options.audience,
          requiredClaims: ["sub", "exp", "iat", "jti"],
          clockTolerance: 5,
        }));
      } catch (error) {
        if (remote && keysUnavailable(error)) throw new AppError("unavailable", "Cannot fetch the token signing keys.");
        if (options.serviceTokens) return options.serviceTokens.verify(token);
        throw new AppError("unauthorized", "The access token is invalid or expired.");
      }
      const role = payload.role;
      // `sub` is a user id (a UUID); anything else would reach the database as a malformed id.
      if (typeof payload.sub !== "string" || !uuidPattern.test(payload.sub) || !roles.includes(role as Role)) {
        throw new AppError("unauthorized", "The access token is invalid or expired.");
      }
      // A user id means something only in its tenant's databases: another tenant's token is no token here.
      if (payload.tid !== options.tenant) throw new AppError("unauthorized", "The access token is invalid or expired.");
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
