import { createHash, randomBytes } from "node:crypto";
import { ACCESS_TOKEN_ALG, type Role, uuidv7 } from "@enclave/core";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";

export interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  publicJwk: JWK;
}

function assertSigningJwk(jwk: JWK): void {
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d) throw new Error("AUTH_SIGNING_KEY must be a P-256 private JWK (ES256)");
}

/** The public half of the signing key, as published in the JWKS (no private parts). */
export function publicJwkOf(jwk: JWK): JWK {
  assertSigningJwk(jwk);
  const kid = jwk.kid ?? createHash("sha256").update(`${jwk.x}.${jwk.y}`).digest("base64url").slice(0, 16);
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: ACCESS_TOKEN_ALG, use: "sig" };
}

/** Imports the ES256 private key (a JWK with `kid`) from configuration. */
export async function importSigningKey(jwk: JWK): Promise<SigningKey> {
  const publicJwk = publicJwkOf(jwk);
  const privateKey = await importJWK({ ...jwk, alg: ACCESS_TOKEN_ALG }, ACCESS_TOKEN_ALG);
  return { kid: publicJwk.kid as string, privateKey, publicJwk };
}

/** A new ES256 key as a private JWK (what `AUTH_SIGNING_KEY` holds; local dev keeps one on disk). */
export async function generateSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair(ACCESS_TOKEN_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: uuidv7().slice(0, 13), alg: ACCESS_TOKEN_ALG };
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
}

export function signAccessToken(key: SigningKey, settings: TokenSettings, user: { id: string; role: Role }): Promise<string> {
  return new SignJWT({ role: user.role })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: "JWT" })
    .setSubject(user.id)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(`${settings.accessTtlSeconds}s`)
    .setJti(uuidv7())
    .sign(key.privateKey);
}

/** An opaque refresh token (256 random bits) and the hash we store instead of it. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string) => createHash("sha256").update(token).digest("hex");
