import { sql } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type AuthHarness, call, createAuthHarness } from "./testing";
import { hashRefreshToken } from "./tokens";

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness();
});
afterAll(() => h?.dispose());

let counter = 0;
const PASSWORD = "correct horse battery";

const query = async <T = Record<string, unknown>>(statement: ReturnType<typeof sql>) =>
  ((await h.database.db.execute(statement)) as unknown as { rows: T[] }).rows;

function expectError(res: { status: number; body: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(res.body)).not.toMatch(/token_hash|refresh_tokens|select .* from|\.ts:\d+/i);
}

async function register() {
  const res = await call(h.app, "POST", "/auth/register", { email: `session-${++counter}@example.com`, password: PASSWORD, name: "Session" });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { user: { id: string; email: string; role: string }; accessToken: string; refreshToken: string };
}

const refresh = (refreshToken: unknown) => call(h.app, "POST", "/auth/refresh", { refreshToken });
const logout = (refreshToken: unknown) => call(h.app, "POST", "/auth/logout", { refreshToken });

type TokenRow = { id: string; family_id: string; token_hash: string; expires_at: Date; used_at: Date | null; revoked_at: Date | null };
const tokenRow = async (token: string) =>
  (await query<TokenRow>(sql`select * from "auth"."refresh_tokens" where "token_hash" = ${hashRefreshToken(token)}`))[0];
const familyRows = async (familyId: string) =>
  query<TokenRow>(sql`select * from "auth"."refresh_tokens" where "family_id" = ${familyId} order by "created_at", "id"`);

describe("POST /auth/refresh", () => {
  test("rotates: answers a new pair, the old token is marked used, the new one joins the family with the same absolute expiry", async () => {
    const session = await register();
    const res = await refresh(session.refreshToken);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["accessToken", "refreshToken"]);
    expect(res.body.refreshToken).not.toBe(session.refreshToken);
    const claims = decodeJwt(res.body.accessToken);
    expect(claims.sub).toBe(session.user.id);
    expect(claims.role).toBe("CUSTOMER");
    expect(claims.jti).not.toBe(decodeJwt(session.accessToken).jti);

    const old = await tokenRow(session.refreshToken);
    const next = await tokenRow(res.body.refreshToken);
    expect(old?.used_at).not.toBeNull();
    expect(old?.revoked_at).toBeNull();
    expect(next?.family_id).toBe(old?.family_id);
    expect(next?.used_at).toBeNull();
    expect(new Date(next?.expires_at as Date).getTime()).toBe(new Date(old?.expires_at as Date).getTime());

    const me = await call(h.app, "GET", "/auth/me", undefined, res.body.accessToken);
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(session.user.id);
  });

  test("the new token works again, the old one stops working", async () => {
    const session = await register();
    const first = await refresh(session.refreshToken);
    const second = await refresh(first.body.refreshToken);
    expect(second.status).toBe(200);
    const family = await familyRows((await tokenRow(session.refreshToken))?.family_id as string);
    expect(family).toHaveLength(3);
    expect(family.filter((row) => row.used_at === null)).toHaveLength(1);
  });

  test("reusing a used token answers 401 and revokes the whole family: the newer token stops working too", async () => {
    const session = await register();
    const rotated = await refresh(session.refreshToken);
    expect(rotated.status).toBe(200);

    expectError(await refresh(session.refreshToken), 401, "unauthorized");
    const family = await familyRows((await tokenRow(session.refreshToken))?.family_id as string);
    expect(family).toHaveLength(2);
    expect(family.every((row) => row.revoked_at !== null)).toBe(true);

    expectError(await refresh(rotated.body.refreshToken), 401, "unauthorized");
    // The revoked family issued nothing further.
    expect(await familyRows(family[0]?.family_id as string)).toHaveLength(2);
  });

  test("reuse revokes only that family: the user's other sessions keep working", async () => {
    const session = await register();
    const other = await call(h.app, "POST", "/auth/login", { email: session.user.email, password: PASSWORD });
    expect(other.status).toBe(200);
    await refresh(session.refreshToken);
    expectError(await refresh(session.refreshToken), 401, "unauthorized");
    expect((await refresh(other.body.refreshToken)).status).toBe(200);
  });

  test("two concurrent uses of one token: exactly one rotates, the other counts as reuse and revokes the family", async () => {
    const session = await register();
    const results = await Promise.all([refresh(session.refreshToken), refresh(session.refreshToken)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
    const winner = results.find((r) => r.status === 200);
    expectError(await refresh(winner?.body.refreshToken), 401, "unauthorized");
  });

  test("an expired family answers 401 (absolute expiry, even for a never-used token)", async () => {
    const session = await register();
    const rotated = await refresh(session.refreshToken);
    const familyId = (await tokenRow(session.refreshToken))?.family_id as string;
    await query(sql`update "auth"."refresh_tokens" set "expires_at" = now() - interval '1 second' where "family_id" = ${familyId}`);
    expectError(await refresh(rotated.body.refreshToken), 401, "unauthorized");
    // Expiry is not reuse: nothing was revoked.
    expect((await familyRows(familyId)).every((row) => row.revoked_at === null)).toBe(true);
  });

  test("rotation never extends the family's expiry", async () => {
    const session = await register();
    const familyId = (await tokenRow(session.refreshToken))?.family_id as string;
    await query(sql`update "auth"."refresh_tokens" set "expires_at" = now() + interval '1 hour' where "family_id" = ${familyId}`);
    const rotated = await refresh(session.refreshToken);
    const next = await tokenRow(rotated.body.refreshToken);
    const remaining = new Date(next?.expires_at as Date).getTime() - Date.now();
    expect(remaining).toBeLessThanOrEqual(3_600_000);
    expect(remaining).toBeGreaterThan(3_500_000);
  });

  test("an unknown token answers 401 and writes nothing", async () => {
    const [before] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."refresh_tokens" where "revoked_at" is not null`);
    expectError(await refresh("A".repeat(43)), 401, "unauthorized");
    const [after] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."refresh_tokens" where "revoked_at" is not null`);
    expect(after?.n).toBe(before?.n);
  });

  test("the token's hash is not accepted in place of the token", async () => {
    const session = await register();
    expectError(await refresh(hashRefreshToken(session.refreshToken)), 401, "unauthorized");
  });

  test("an access token is not a refresh token", async () => {
    const session = await register();
    expectError(await refresh(session.accessToken.slice(0, 256)), 401, "unauthorized");
  });

  test("the refreshed access token carries the user's current role", async () => {
    const session = await register();
    await query(sql`update "auth"."users" set "role" = 'VENDOR' where "id" = ${session.user.id}`);
    const res = await refresh(session.refreshToken);
    expect(decodeJwt(res.body.accessToken).role).toBe("VENDOR");
  });

  const badBodies: [string, unknown][] = [
    ["a missing token", {}],
    ["an extra field", { refreshToken: "abc", userId: "x" }],
    ["a numeric token", { refreshToken: 123 }],
    ["a null token", { refreshToken: null }],
    ["an empty token", { refreshToken: "" }],
    ["a 257-character token", { refreshToken: "a".repeat(257) }],
    ["an array body", ["abc"]],
    ["a null body", "null"],
  ];
  test.each(badBodies)("answers 400 validation_failed for %s", async (_, body) => {
    expectError(await call(h.app, "POST", "/auth/refresh", body), 400, "validation_failed");
  });
});

describe("POST /auth/logout", () => {
  test("answers 204 with no body and revokes the session's family", async () => {
    const session = await register();
    const rotated = await refresh(session.refreshToken);
    const res = await logout(rotated.body.refreshToken);
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    const family = await familyRows((await tokenRow(session.refreshToken))?.family_id as string);
    expect(family.every((row) => row.revoked_at !== null)).toBe(true);
    expectError(await refresh(rotated.body.refreshToken), 401, "unauthorized");
  });

  test("leaves the user's other sessions alone", async () => {
    const session = await register();
    const other = await call(h.app, "POST", "/auth/login", { email: session.user.email, password: PASSWORD });
    expect((await logout(session.refreshToken)).status).toBe(204);
    expect((await refresh(other.body.refreshToken)).status).toBe(200);
  });

  test("is idempotent, and an unknown token is fine", async () => {
    const session = await register();
    expect((await logout(session.refreshToken)).status).toBe(204);
    expect((await logout(session.refreshToken)).status).toBe(204);
    expect((await logout("unknown-token")).status).toBe(204);
  });

  test("a used token also ends its session", async () => {
    const session = await register();
    const rotated = await refresh(session.refreshToken);
    expect((await logout(session.refreshToken)).status).toBe(204);
    expectError(await refresh(rotated.body.refreshToken), 401, "unauthorized");
  });

  const badBodies: [string, unknown][] = [
    ["a missing token", {}],
    ["an extra field", { refreshToken: "abc", all: true }],
    ["a boolean token", { refreshToken: true }],
    ["an empty token", { refreshToken: "" }],
    ["a 257-character token", { refreshToken: "a".repeat(257) }],
    ["a string body", '"abc"'],
  ];
  test.each(badBodies)("answers 400 validation_failed for %s", async (_, body) => {
    expectError(await call(h.app, "POST", "/auth/logout", body), 400, "validation_failed");
  });

  test("with no body at all answers 400, not 204", async () => {
    const res = await h.app.request("/auth/logout", { method: "POST" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
  });
});

describe("round trips", () => {
  test("a refresh costs at most 3 statements (1 measured)", async () => {
    const session = await register();
    const before = h.database.stats.queries;
    expect((await refresh(session.refreshToken)).status).toBe(200);
    expect(h.database.stats.queries - before).toBe(1);
  });

  test("a rejected refresh (reuse detection included) costs at most 3 statements", async () => {
    const session = await register();
    await refresh(session.refreshToken);
    const before = h.database.stats.queries;
    expect((await refresh(session.refreshToken)).status).toBe(401);
    const used = h.database.stats.queries - before;
    expect(used).toBeLessThanOrEqual(3);
    expect(used).toBe(2);
  });

  test("a logout costs at most 3 statements (1 measured)", async () => {
    const session = await register();
    const before = h.database.stats.queries;
    expect((await logout(session.refreshToken)).status).toBe(204);
    expect(h.database.stats.queries - before).toBe(1);
  });
});
