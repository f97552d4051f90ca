import { type MemoryBus, type Role, uuidv7 } from "@enclave/core";
import { testServiceContext } from "@enclave/core/testing/context";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { testUserKeys } from "@enclave/core/testing/users";
import type { ProfileContext } from "./context";
import { profileInbox, profileOutbox } from "./profile.sql";
import { createProfileApp } from "./routes";

export { call } from "@enclave/core/testing/http";

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
  const users = await testUserKeys();
  const base = testServiceContext("profile", profileOutbox, { database, inbox: profileInbox, verifier: users.verifier });
  const bus = base.bus;
  const ctx: ProfileContext = { ...base, ...overrides };
  return {
    ctx,
    app: createProfileApp(ctx),
    database,
    bus,
    async token({ userId = uuidv7(), role = "CUSTOMER" } = {}) {
      return { userId, token: await users.sign({ id: userId, role }) };
    },
    dispose: () => database.dispose(),
  };
}
