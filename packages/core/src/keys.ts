import { createHash, generateKeyPairSync } from "node:crypto";

/**
 * The stage's keys, in one place: user access tokens and service tokens are both ES256 (ECDSA
 * P-256), kept as private JWKs in secrets, published as public JWKS documents. While the
 * access-token key is rotated, AUTH_SIGNING_KEY holds a key set (`parseSigningKeys`): the first
 * key signs, every key verifies. This module needs
 * only node:crypto, so the deployment (infra/) and `infra/keygen.ts` use it without loading jose.
 * Verifying tokens is http/auth.ts (access tokens) and http/service-token.ts (service tokens).
 */
export const KEY_ALG = "ES256";

export interface PrivateJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  d: string;
  kid: string;
  alg?: string;
  [member: string]: unknown;
}

export interface PublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: typeof KEY_ALG;
  use: "sig";
}

const keygenHint = "(npx tsx infra/keygen.ts prints one)";

/** A key id derived from the public key: tokens name the key that signed them. */
const kidOf = (x: string, y: string) => createHash("sha256").update(`${x}.${y}`).digest("base64url").slice(0, 16);

/** A new P-256 private JWK with its kid (what `AuthSigningKey` and `ServiceSigningKey` hold). */
export function generatePrivateJwk(): PrivateJwk {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  return { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, d: jwk.d!, kid: kidOf(jwk.x!, jwk.y!), alg: KEY_ALG };
}

const isPrivateJwk = (value: unknown): value is { kty: "EC"; crv: "P-256"; x: string; y: string; d: string; kid?: string } => {
  const jwk = value as Record<string, unknown> | null;
  return (
    jwk !== null &&
    typeof jwk === "object" &&
    jwk.kty === "EC" &&
    jwk.crv === "P-256" &&
    typeof jwk.x === "string" &&
    typeof jwk.y === "string" &&
    typeof jwk.d === "string"
  );
};

/**
 * A private JWK from configuration. Throws naming `variable` (never echoing the value, a secret)
 * when it is not JSON or not a P-256 private key. A key without a kid gets the derived one.
 */
export function parsePrivateJwk(variable: string, json: string): PrivateJwk {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error(`${variable} is not JSON: set it to a P-256 private JWK ${keygenHint}`);
  }
  return privateJwkOf(variable, value);
}

/** `value` as a private JWK, checked like `parsePrivateJwk` (for keys already parsed). */
export function privateJwkOf(variable: string, value: unknown): PrivateJwk {
  if (!isPrivateJwk(value)) throw new Error(`${variable} must be a P-256 private JWK with x, y and d ${keygenHint}`);
  return { ...(value as Record<string, unknown>), ...value, kid: value.kid ?? kidOf(value.x, value.y) };
}

/** True for a JSON text holding a P-256 private JWK; config schemas use it to fail fast. */
export function isPrivateJwkJson(text: string): boolean {
  try {
    return isPrivateJwk(JSON.parse(text));
  } catch {
    return false;
  }
}

/** The public half of a private JWK, as published (no private parts). */
export function publicJwkOf(jwk: PrivateJwk): PublicJwk {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: jwk.kid, alg: KEY_ALG, use: "sig" };
}

/** The JWKS document (JSON) of private JWKs' public halves: what verifiers are configured with. */
export function publicJwksJson(...keys: PrivateJwk[]): string {
  return JSON.stringify({ keys: keys.map(publicJwkOf) });
}

/** True for a JWKS document whose keys carry no private or symmetric key material. */
export function isPublicJwksJson(text: string): boolean {
  try {
    const doc = JSON.parse(text) as { keys?: unknown };
    return (
      Array.isArray(doc?.keys) &&
      doc.keys.length > 0 &&
      doc.keys.every((key) => key !== null && typeof key === "object" && typeof key.kty === "string" && !("d" in key) && !("k" in key))
    );
  } catch {
    return false;
  }
}

/**
 * The access-token signing keys of a stage. One key normally; two while the key is rotated.
 * `keys[0]` signs; every key in `keys` is published in the JWKS and verifies tokens.
 */
export interface SigningKeySet {
  signer: PrivateJwk;
  keys: PrivateJwk[];
}

/**
 * AUTH_SIGNING_KEY: a P-256 private JWK, or `{"keys": [<jwk>, …]}` during a rotation, where the
 * first key signs and the others are still (or already) accepted. Throws naming `variable`,
 * never echoing the value.
 */
export function parseSigningKeys(variable: string, json: string): SigningKeySet {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error(`${variable} is not JSON: set it to a P-256 private JWK ${keygenHint}, or {"keys": [...]} of them while rotating`);
  }
  const list = (value as { keys?: unknown } | null)?.keys;
  if (list === undefined) {
    const signer = privateJwkOf(variable, value);
    return { signer, keys: [signer] };
  }
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${variable} must list at least one key in "keys" (the first signs)`);
  const keys = list.map((key, i) => privateJwkOf(`${variable} (key ${i + 1})`, key));
  if (new Set(keys.map((key) => key.kid)).size !== keys.length) throw new Error(`${variable} lists the same key id twice`);
  return { signer: keys[0] as PrivateJwk, keys };
}

/** True for a value `parseSigningKeys` accepts; config schemas use it to fail fast. */
export function isSigningKeysJson(text: string): boolean {
  try {
    parseSigningKeys("value", text);
    return true;
  } catch {
    return false;
  }
}

/** The value of AUTH_SIGNING_KEY for these keys, the first signing: one JWK alone, else a key set. */
export function signingKeysJson(keys: PrivateJwk[]): string {
  if (keys.length === 0) throw new Error("a signing key set needs at least one key");
  return JSON.stringify(keys.length === 1 ? keys[0] : { keys });
}

/**
 * The steps of a signing-key rotation, each turning the current AUTH_SIGNING_KEY value into the
 * next one (docs/DEPLOY.md, "Rotating the signing key"):
 * - `add`: a new key is published beside the current one, which still signs;
 * - `promote`: the newest key signs, the previous one is still accepted;
 * - `drop`: only the signing key is left.
 */
export function rotateSigningKeys(current: string, step: "add" | "promote" | "drop", variable = "AUTH_SIGNING_KEY"): string {
  const { signer, keys } = parseSigningKeys(variable, current);
  switch (step) {
    case "add":
      return signingKeysJson([...keys, generatePrivateJwk()]);
    case "promote": {
      if (keys.length < 2) throw new Error(`${variable} holds one key: add a new one first`);
      const newest = keys.at(-1) as PrivateJwk;
      return signingKeysJson([newest, ...keys.filter((key) => key.kid !== newest.kid)]);
    }
    case "drop":
      return signingKeysJson([signer]);
  }
}
