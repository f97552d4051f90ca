import { importJWK, SignJWT } from "jose";
import { uuidv7 } from "../ids";
import { type PublicJwk, privateJwkOf, publicJwkOf } from "../keys";
import { ACCESS_TOKEN_ALG } from "./auth";
import type { Role } from "./types";

/**
 * Signing users' access tokens: auth does it, and tests sign as auth would. The claims are the
 * other half of what http/auth.ts verifies (`sub`, `role`, `iss`, `aud`, `exp`, `iat`, `jti`,
 * ES256 with the key's kid), so both halves of the token contract live in core.
 */
export interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  publicJwk: PublicJwk;
}

/** Imports the ES256 private key (AUTH_SIGNING_KEY, a JWK) that signs access tokens. */
export async function importSigningKey(jwk: unknown): Promise<SigningKey> {
  const privateJwk = privateJwkOf("AUTH_SIGNING_KEY", jwk);
  const privateKey = await importJWK({ ...privateJwk, alg: ACCESS_TOKEN_ALG }, ACCESS_TOKEN_ALG);
  return { kid: privateJwk.kid, privateKey, publicJwk: publicJwkOf(privateJwk) };
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  /** The tenant auth serves, signed as the `tid` claim; none outside a tenant deployment. */
  tenant?: string | undefined;
}

export function signAccessToken(key: SigningKey, settings: TokenSettings, user: { id: string; role: Role }): Promise<string> {
  return new SignJWT({ role: user.role, ...(settings.tenant ? { tid: settings.tenant } : {}) })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: "JWT" })
    .setSubject(user.id)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(`${settings.accessTtlSeconds}s`)
    .setJti(uuidv7())
    .sign(key.privateKey);
}
