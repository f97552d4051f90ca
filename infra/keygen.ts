import { createHash, generateKeyPairSync } from "node:crypto";

/**
 * Prints a new ES256 private key as a JWK (JSON, one line) for `sst secret set`:
 *   npx sst secret set AuthSigningKey "$(npx tsx infra/keygen.ts)" --stage production
 * The kid is derived from the public key, so tokens name the key that signed them.
 */
export function generatePrivateJwk(): Record<string, string> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  const kid = createHash("sha256").update(`${jwk.x}.${jwk.y}`).digest("base64url").slice(0, 16);
  return { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, d: jwk.d!, kid, alg: "ES256" };
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${JSON.stringify(generatePrivateJwk())}\n`);
