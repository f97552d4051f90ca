import { generateSigningJwk, importSigningKey, type SigningKey, signAccessToken } from "@enclave/auth/tokens";
import { createTokenVerifier, type MemoryBus, memoryBus, type Role, uuidv7 } from "@enclave/core";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing";
import type { AdminContext } from "./context";
import { createAdminApp } from "./routes";

export { call } from "@enclave/auth/testing";

export interface AdminHarness {
  ctx: AdminContext;
  app: ReturnType<typeof createAdminApp>;
  database: TestDatabase;
  bus: MemoryBus;
  key: SigningKey;
  /** An access token as the auth service would sign it; a new user id unless one is given. */
  token(role: Role, userId?: string): Promise<string>;
  dispose(): Promise<void>;
}

const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };

/** A migrated admin database, an in-memory bus and a signing key standing in for auth's. */
export async function createAdminHarness(overrides: Partial<AdminContext> = {}): Promise<AdminHarness> {
  const database = await createTestDatabase(["admin"]);
  const key = await importSigningKey(await generateSigningJwk());
  const bus = memoryBus();
  const ctx: AdminContext = {
    app: "enclave",
    stage: "test",
    database: async () => database,
    bus,
    verifier: createTokenVerifier({ issuer: tokens.issuer, audience: tokens.audience, jwks: { keys: [key.publicJwk] } }),
    ...overrides,
  };
  return {
    ctx,
    app: createAdminApp(ctx),
    database,
    bus,
    key,
    token: (role, userId = uuidv7()) => signAccessToken(key, tokens, { id: userId, role }),
    dispose: () => database.dispose(),
  };
}
