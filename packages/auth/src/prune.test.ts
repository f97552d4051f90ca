import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loginAttemptsTable, refreshTokensTable } from "./auth.sql";
import { authJobs } from "./jobs";
import { type AuthHarness, call, createAuthHarness } from "./testing";
import { pruneExpiredRefreshTokens } from "./user";

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness({ throttle: { maxFailures: 3, windowSeconds: 600, lockSeconds: 900 } });
});
afterAll(() => h?.dispose());

test("the prune cron deletes failed-sign-in counters whose window and lock have passed, and keeps the others", async () => {
  const db = h.database.db;
  await db.insert(loginAttemptsTable).values([
    { accountKey: "stale@example.com", failures: 2, windowStartedAt: sql`now() - interval '11 minutes'`, lockedUntil: null },
    { accountKey: "lock-over@example.com", failures: 3, windowStartedAt: sql`now() - interval '20 minutes'`, lockedUntil: sql`now() - interval '1 minute'` },
    { accountKey: "recent@example.com", failures: 1, windowStartedAt: sql`now() - interval '1 minute'`, lockedUntil: null },
    { accountKey: "locked@example.com", failures: 3, windowStartedAt: sql`now() - interval '12 minutes'`, lockedUntil: sql`now() + interval '3 minutes'` },
  ]);
  const result = await authJobs["prune-expired"].run(h.ctx);
  expect(result).toMatchObject({ loginAttempts: 2 });
  const left = await db.select({ key: loginAttemptsTable.accountKey }).from(loginAttemptsTable).orderBy(loginAttemptsTable.accountKey);
  expect(left.map((r) => r.key)).toEqual(["locked@example.com", "recent@example.com"]);
  expect(await authJobs["prune-expired"].run(h.ctx)).toMatchObject({ loginAttempts: 0 });
});

describe("refresh tokens past their expiry", () => {
  const password = "prune-password";
  let counter = 0;
  const register = async () => {
    const res = await call(h.app, "POST", "/auth/register", { email: `prune-${++counter}@example.com`, password, name: "Prune" });
    expect(res.status).toBe(201);
    return { id: res.body.user.id as string, refreshToken: res.body.refreshToken as string };
  };
  const refresh = (refreshToken: string) => call(h.app, "POST", "/auth/refresh", { refreshToken });
  const rowsOfUser = async (userId: string) => (await h.database.db.select().from(refreshTokensTable).where(eq(refreshTokensTable.userId, userId))).length;
  const expire = (userId: string) =>
    h.database.db.update(refreshTokensTable).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(refreshTokensTable.userId, userId));

  test("whole expired families go, oldest first in bounded batches; live families, their rotation and their reuse detection stay", async () => {
    const live = await register();
    const first = await refresh(live.refreshToken);
    expect(first.status).toBe(200);
    const second = await refresh(first.body.refreshToken);
    expect(second.status).toBe(200);
    const expired = [await register(), await register()];
    const rotated = await refresh(expired[0]!.refreshToken);
    expect(rotated.status).toBe(200);
    for (const user of expired) await expire(user.id);
    const refusedBefore = await refresh(rotated.body.refreshToken);
    expect(refusedBefore.status).toBe(401);

    // Three expired rows (a rotated family of two, a family of one), two deleted per statement, one statement per run.
    expect(await pruneExpiredRefreshTokens(h.ctx, { batchSize: 2, maxBatches: 1 })).toEqual({ deleted: 2, capped: true });
    expect(await pruneExpiredRefreshTokens(h.ctx, { batchSize: 2, maxBatches: 1 })).toEqual({ deleted: 1, capped: false });
    expect(await pruneExpiredRefreshTokens(h.ctx)).toEqual({ deleted: 0, capped: false });
    expect([await rowsOfUser(expired[0]!.id), await rowsOfUser(expired[1]!.id), await rowsOfUser(live.id)]).toEqual([0, 0, 3]);

    // An expired token gets the answer it got before its row went.
    const refusedAfter = await refresh(rotated.body.refreshToken);
    expect([refusedAfter.status, refusedAfter.body]).toEqual([refusedBefore.status, refusedBefore.body]);
    // The live family still rotates, and presenting one of its used tokens still revokes it.
    const third = await refresh(second.body.refreshToken);
    expect(third.status).toBe(200);
    expect((await refresh(live.refreshToken)).status).toBe(401);
    expect((await refresh(third.body.refreshToken)).status).toBe(401);
  });

  test("the hourly cron prunes both tables", async () => {
    const user = await register();
    await expire(user.id);
    const result = await authJobs["prune-expired"].run(h.ctx);
    expect(result).toEqual({ loginAttempts: 0, refreshTokens: 1, capped: false });
    expect(await rowsOfUser(user.id)).toBe(0);
  });
});
