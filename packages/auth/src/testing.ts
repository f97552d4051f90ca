import type { MemoryBus } from "@enclave/core";
import { testServiceContext } from "@enclave/core/testing/context";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { testTokenSettings, testUserKeys } from "@enclave/core/testing/users";
import { authInbox, authOutbox } from "./auth.sql";
import { type AuthContext, defaultAddressThrottle, defaultThrottle } from "./context";
import { createAuthApp } from "./routes";

export interface AuthHarness {
  ctx: AuthContext;
  app: ReturnType<typeof createAuthApp>;
  database: TestDatabase;
  bus: MemoryBus;
  dispose(): Promise<void>;
}

/** A migrated database, a fresh signing key and an in-memory bus around the auth app. */
export async function createAuthHarness(overrides: Partial<AuthContext> = {}): Promise<AuthHarness> {
  const database = await createTestDatabase(["auth"]);
  const { key, verifier } = await testUserKeys();
  const base = testServiceContext("auth", authOutbox, { database, inbox: authInbox, verifier });
  const bus = base.bus;
  const ctx: AuthContext = {
    ...base,
    signingKey: async () => key,
    publicJwk: key.publicJwk,
    tokens: testTokenSettings,
    refreshTtlSeconds: 30 * 86_400,
    // Low scrypt cost keeps tests fast; deployed stages always use 17.
    passwordCost: 10,
    throttle: defaultThrottle,
    addressThrottle: defaultAddressThrottle,
    forwardedForHops: 0,
    ...overrides,
  };
  return { ctx, app: createAuthApp(ctx), database, bus, dispose: () => database.dispose() };
}

export { call } from "@enclave/core/testing/http";
