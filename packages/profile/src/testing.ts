import { generateSigningJwk, importSigningKey, signAccessToken } from "@enclave/auth/tokens";
import { createTokenVerifier, type MemoryBus, memoryBus, type Role, uuidv7 } from "@enclave/core";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing";
import type { ProfileContext } from "./context";
import { createProfileApp } from "./routes";

export { call } from "@enclave/auth/testing";

export interface ProfileHarness {
  ctx: ProfileContext;
  app: ReturnType<typeof createProfileApp>;
  database: TestDatabase;
  bus: MemoryBus;
  /** An access token for a user (a new user id unless given), signed as the auth service would. */
  token(options?: { userId?: string; role?: Role }): Promise<{ userId: string; token: string }>;
  dispose(): Promise<void>;
}

/** A migrated database, an in-memory bus and a local signing key around the profile app. */
export async function createProfileHarness(overrides: Partial<ProfileContext> = {}): Promise<ProfileHarness> {
  const database = await createTestDatabase(["profile"]);
  const key = await importSigningKey(await generateSigningJwk());
  const bus = memoryBus();
  const settings = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  const ctx: ProfileContext = {
    app: "enclave",
    stage: "test",
    database: async () => database,
    bus,
    verifier: createTokenVerifier({ issuer: settings.issuer, audience: settings.audience, jwks: { keys: [key.publicJwk] } }),
    ...overrides,
  };
  return {
    ctx,
    app: createProfileApp(ctx),
    database,
    bus,
    async token({ userId = uuidv7(), role = "CUSTOMER" } = {}) {
      return { userId, token: await signAccessToken(key, settings, { id: userId, role }) };
    },
    dispose: () => database.dispose(),
  };
}
