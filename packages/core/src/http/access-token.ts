import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import { uuidv7 } from "../ids";
import { type PublicJwk, privateJwkOf, publicJwkOf } from "../keys";
import { ACCESS_TOKEN_ALG } from "./auth";
import type { Role } from "./types";

/**
 * Signing users' access tokens: auth does it, and tests sign as auth would. The claims are the
 * other half of what http/auth.ts verifies (`sub`, `role`, `iss`, `aud`, `exp`, `iat`, `jti`,
 * ES256 with the key's kid), so both halves of the token contract live in core. node:crypto
 * signs: nothing else is loaded for it.
 */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

/** Imports the ES256 private key (AUTH_SIGNING_KEY, a JWK) that signs access tokens. */
export async function importSigningKey(jwk: unknown): Promise<SigningKey> {
  const privateJwk = privateJwkOf("AUTH_SIGNING_KEY", jwk);
  const { kty, crv, x, y, d } = privateJwk;
  const privateKey = createPrivateKey({ key: { kty, crv, x, y, d }, format: "jwk" });
  return { kid: privateJwk.kid, privateKey, publicJwk: publicJwkOf(privateJwk) };
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  /** The tenant auth serves, signed as the `tid` claim; none outside a tenant deployment. */
  tenant?: string | undefined;
}

const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

export async function signAccessToken(key: SigningKey, settings: TokenSettings, user: { id: string; role: Role }): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const header = segment({ alg: ACCESS_TOKEN_ALG, kid: key.kid, typ: "JWT" });
  const payload = segment({
    role: user.role,
    ...(settings.tenant ? { tid: settings.tenant } : {}),
    sub: user.id,
    iss: settings.issuer,
    aud: settings.audience,
    iat: issuedAt,
    exp: issuedAt + settings.accessTtlSeconds,
    jti: uuidv7(),
  });
  const input = `${header}.${payload}`;
  // JWS carries ECDSA signatures as r‖s (IEEE P1363), not DER.
  const signature = sign("sha256", Buffer.from(input, "ascii"), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}
