import { readFileSync } from "node:fs";
import { generatePrivateJwk, rotateSigningKeys } from "@enclave/core/keys";

/**
 * Prints a new ES256 private key as a JWK (JSON, one line) for `sst secret set`:
 *   npx sst secret set AuthSigningKey "$(npx tsx infra/keygen.ts)" --stage production
 * The kid is derived from the public key, so tokens name the key that signed them.
 *
 * With `--rotate add|promote|drop` it reads the secret's current value on stdin and prints the
 * next value of a rotation (docs/DEPLOY.md, "Rotating the signing key"):
 *   printf %s "$CURRENT" | npx tsx infra/keygen.ts --rotate add
 */
if (import.meta.url === `file://${process.argv[1]}`) {
  const [flag, step] = process.argv.slice(2);
  if (flag === undefined) process.stdout.write(`${JSON.stringify(generatePrivateJwk())}\n`);
  else if (flag === "--rotate" && (step === "add" || step === "promote" || step === "drop")) {
    try {
      process.stdout.write(`${rotateSigningKeys(readFileSync(0, "utf8").trim(), step, "the value on stdin")}\n`);
    } catch (error) {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exit(1);
    }
  } else {
    process.stderr.write("usage: npx tsx infra/keygen.ts [--rotate add|promote|drop < current-value]\n");
    process.exit(2);
  }
}
