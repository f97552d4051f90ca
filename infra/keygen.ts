import { generatePrivateJwk } from "@enclave/core/keys";

/**
 * Prints a new ES256 private key as a JWK (JSON, one line) for `sst secret set`:
 *   npx sst secret set AuthSigningKey "$(npx tsx infra/keygen.ts)" --stage production
 * The kid is derived from the public key, so tokens name the key that signed them.
 */
if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${JSON.stringify(generatePrivateJwk())}\n`);
