import { type MemoryBus, type Role, uuidv7 } from "@enclave/core";
import type { SigningKey } from "@enclave/core/http/access-token";
import { testServiceContext } from "@enclave/core/testing/context";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { testUserKeys } from "@enclave/core/testing/users";
import { adminInbox, adminOutbox } from "./admin.sql";
import type { AdminContext } from "./context";
import { createAdminApp } from "./routes";

export { call } from "@enclave/core/testing/http";

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

/** A migrated admin database, an in-memory bus and a signing key standing in for auth's. */
export async function createAdminHarness(overrides: Partial<AdminContext> = {}): Promise<AdminHarness> {
  const database = await createTestDatabase(["admin"]);
  const users = await testUserKeys();
  const base = testServiceContext("admin", adminOutbox, { database, inbox: adminInbox, verifier: users.verifier });
  const bus = base.bus;
  const ctx: AdminContext = { ...base, ...overrides };
  return {
    ctx,
    app: createAdminApp(ctx),
    database,
    bus,
    key: users.key,
    token: (role, userId = uuidv7()) => users.sign({ id: userId, role }),
    dispose: () => database.dispose(),
  };
}
