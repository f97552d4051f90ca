import { sql } from "drizzle-orm";
import { afterAll, beforeAll, expect, test } from "vitest";
import { loginAttemptsTable } from "./auth.sql";
import { authJobs } from "./jobs";
import { type AuthHarness, createAuthHarness } from "./testing";

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness({ throttle: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900 } });
});
afterAll(() => h?.dispose());

test("the prune cron deletes counters whose window and lock have passed, and keeps the others", async () => {
  const db = h.database.db;
  await db.insert(loginAttemptsTable).values([
    { accountKey: "stale@example.com", failures: 2, windowStartedAt: sql`now() - interval '11 minutes'`, lockedUntil: null },
    { accountKey: "lock-over@example.com", failures: 3, windowStartedAt: sql`now() - interval '20 minutes'`, lockedUntil: sql`now() - interval '1 minute'` },
    { accountKey: "recent@example.com", failures: 1, windowStartedAt: sql`now() - interval '1 minute'`, lockedUntil: null },
    { accountKey: "locked@example.com", failures: 3, windowStartedAt: sql`now() - interval '12 minutes'`, lockedUntil: sql`now() + interval '3 minutes'` },
  ]);
  const result = await authJobs["prune-login-attempts"].run(h.ctx);
  expect(result).toEqual({ deleted: 2 });
  const left = await db.select({ key: loginAttemptsTable.accountKey }).from(loginAttemptsTable).orderBy(loginAttemptsTable.accountKey);
  expect(left.map((r) => r.key)).toEqual(["locked@example.com", "recent@example.com"]);
  expect(await authJobs["prune-login-attempts"].run(h.ctx)).toEqual({ deleted: 0 });
});
