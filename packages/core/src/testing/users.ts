import { importSigningKey, type SigningKey, signAccessToken, type TokenSettings } from "../http/access-token";
import { createTokenVerifier } from "../http/auth";
import type { Role, TokenVerifier } from "../http/types";
import { generatePrivateJwk } from "../keys";

export const testTokenSettings: TokenSettings = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };

export interface TestUserKeys {
  key: SigningKey;
  /** Verifies what `sign` issues, as every service verifies auth's tokens. */
  verifier: TokenVerifier;
  /** An access token for a user, signed as the auth service would. */
  sign(user: { id: string; role: Role }): Promise<string>;
}

/** A fresh auth signing key, for services' tests that need signed-in users without auth itself. */
export async function testUserKeys(settings: TokenSettings = testTokenSettings): Promise<TestUserKeys> {
  const key = await importSigningKey(generatePrivateJwk());
  return {
    key,
    verifier: createTokenVerifier({ issuer: settings.issuer, audience: settings.audience, jwks: { keys: [key.publicJwk] } }),
    sign: (user) => signAccessToken(key, settings, user),
  };
}
