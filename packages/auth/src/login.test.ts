import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type AuthHarness, call, createAuthHarness } from "./testing";

/** Three failures lock an account for a minute: small numbers keep the tests short. */
const throttle = { maxFailures: 3, windowSeconds: 600, lockSeconds: 60 };

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness({ throttle });
});
afterAll(() => h?.dispose());

let counter = 0;
const uniqueEmail = (prefix = "login") => `${prefix}-${++counter}@example.com`;
const PASSWORD = "correct horse battery";

const query = async <T = Record<string, unknown>>(statement: ReturnType<typeof sql>) =>
  ((await h.database.db.execute(statement)) as unknown as { rows: T[] }).rows;

function expectError(res: { status: number; body: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(res.body)).not.toMatch(/scrypt\$|password_hash|select .* from|\.ts:\d+/i);
}

async function register(email = uniqueEmail(), password = PASSWORD) {
  const res = await call(h.app, "POST", "/auth/register", { email, password, name: "Login Tester" });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { user: { id: string; email: string }; accessToken: string; refreshToken: string };
}

const login = (email: string, password: string) => call(h.app, "POST", "/auth/login", { email, password });

describe("POST /auth/login", () => {
  test("signs in with the right password and answers the same user as registration", async () => {
    const registered = await register();
    const res = await login(registered.user.email, PASSWORD);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["accessToken", "refreshToken", "user"]);
    expect(res.body.user).toEqual(registered.user);
    expect(res.body.refreshToken).not.toBe(registered.refreshToken);
    expect(JSON.stringify(res.body)).not.toMatch(/scrypt|passwordHash|password_hash/);
    // Each sign-in starts a new refresh-token family next to the one registration created.
    const families = await query<{ n: number }>(
      sql`select count(distinct "family_id")::int as n from "auth"."refresh_tokens" where "user_id" = ${registered.user.id}`,
    );
    expect(families[0]?.n).toBe(2);
    const me = await call(h.app, "GET", "/auth/me", undefined, res.body.accessToken);
    expect(me.body.user).toEqual(registered.user);
  });

  test("matches the email case-insensitively and ignores surrounding spaces", async () => {
    const registered = await register(`Mixed.Case-${++counter}@Example.COM`);
    for (const variant of [registered.user.email.toLowerCase(), registered.user.email.toUpperCase(), `  ${registered.user.email} `]) {
      const res = await login(variant, PASSWORD);
      expect(res.status, variant).toBe(200);
      expect(res.body.user.id).toBe(registered.user.id);
    }
  });

  test("a wrong password and an unknown email answer the same 401 status, body and headers", async () => {
    const registered = await register();
    const wrong = await login(registered.user.email, "not the password");
    const unknown = await login(uniqueEmail("nobody"), "not the password");
    expectError(wrong, 401, "unauthorized");
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
    const visible = (headers: Headers) => [...headers.entries()].filter(([name]) => name !== "x-request-id");
    expect(visible(unknown.headers)).toEqual(visible(wrong.headers));
    expect(wrong.headers.get("retry-after")).toBeNull();
  });

  test("the password is case-sensitive and compared exactly", async () => {
    const registered = await register();
    for (const attempt of [PASSWORD.toUpperCase(), `${PASSWORD} `, PASSWORD.slice(0, -1)]) {
      expectError(await login(registered.user.email, attempt), 401, "unauthorized");
      // Clear the counter so this test does not trip the throttle.
      await query(sql`delete from "auth"."login_attempts" where "account_key" = ${registered.user.email}`);
    }
  });

  const badBodies: [string, unknown][] = [
    ["a missing email", { password: PASSWORD }],
    ["a missing password", { email: "a@b.io" }],
    ["an extra field", { email: "a@b.io", password: PASSWORD, remember: true }],
    ["a numeric email", { email: 1, password: PASSWORD }],
    ["a numeric password", { email: "a@b.io", password: 12345678 }],
    ["a null password", { email: "a@b.io", password: null }],
    ["an empty password", { email: "a@b.io", password: "" }],
    ["a 129-character password", { email: "a@b.io", password: "p".repeat(129) }],
    ["an email that is not an email", { email: "admin", password: PASSWORD }],
    ["an email with a NUL byte", { email: "a\u0000@b.io", password: PASSWORD }],
    ["an SQL-looking email", { email: "' or 1=1 --", password: PASSWORD }],
    ["a 255-character email", { email: `${"a".repeat(243)}@example.com`, password: PASSWORD }],
    ["an array body", [{ email: "a@b.io", password: PASSWORD }]],
    ["a null body", "null"],
    ["an empty object", {}],
  ];
  test.each(badBodies)("answers 400 validation_failed for %s, without counting a failure", async (_, body) => {
    const before = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."login_attempts"`);
    expectError(await call(h.app, "POST", "/auth/login", body), 400, "validation_failed");
    const after = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."login_attempts"`);
    expect(after[0]?.n).toBe(before[0]?.n);
  });

  test("a password with a NUL byte is just a wrong password", async () => {
    const registered = await register();
    expectError(await login(registered.user.email, "correct\u0000horse"), 401, "unauthorized");
  });

  test("a password of 1 to 7 characters is checked, not rejected (older or configured passwords)", async () => {
    const registered = await register();
    expectError(await login(registered.user.email, "short"), 401, "unauthorized");
  });
});

describe("throttling", () => {
  test("locks an account after repeated failures: 429 with Retry-After, even for the right password", async () => {
    const registered = await register();
    for (let i = 0; i < throttle.maxFailures; i++) expectError(await login(registered.user.email, "wrong password"), 401, "unauthorized");
    const locked = await login(registered.user.email, "wrong password");
    expectError(locked, 429, "rate_limited");
    const retryAfter = Number(locked.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(throttle.lockSeconds);
    const right = await login(registered.user.email, PASSWORD);
    expectError(right, 429, "rate_limited");
    expect(right.body).toEqual(locked.body);
    expect(right.headers.get("retry-after")).toMatch(/^\d+$/);
  });

  test("unknown emails are throttled exactly like known ones, so 429 reveals nothing", async () => {
    const registered = await register();
    const unknown = uniqueEmail("ghost");
    for (let i = 0; i < throttle.maxFailures; i++) {
      expectError(await login(unknown, "wrong password"), 401, "unauthorized");
      expectError(await login(registered.user.email, "wrong password"), 401, "unauthorized");
    }
    const ghost = await login(unknown, "wrong password");
    const known = await login(registered.user.email, "wrong password");
    expectError(ghost, 429, "rate_limited");
    expectError(known, 429, "rate_limited");
    expect(ghost.body).toEqual(known.body);
    expect(ghost.headers.get("retry-after")).toMatch(/^\d+$/);
    const [row] = await query<{ failures: number }>(sql`select "failures" from "auth"."login_attempts" where "account_key" = ${unknown}`);
    expect(row?.failures).toBe(throttle.maxFailures);
  });

  test("letter case and spaces do not get around the counter", async () => {
    const registered = await register();
    const email = registered.user.email;
    expectError(await login(email.toUpperCase(), "wrong password"), 401, "unauthorized");
    expectError(await login(` ${email} `, "wrong password"), 401, "unauthorized");
    expectError(await login(email, "wrong password"), 401, "unauthorized");
    expectError(await login(email.toUpperCase(), PASSWORD), 429, "rate_limited");
  });

  test("a successful sign-in clears the failures", async () => {
    const registered = await register();
    const email = registered.user.email;
    for (let i = 0; i < throttle.maxFailures - 1; i++) expectError(await login(email, "wrong password"), 401, "unauthorized");
    expect((await login(email, PASSWORD)).status).toBe(200);
    expect(await query(sql`select 1 from "auth"."login_attempts" where "account_key" = ${email}`)).toHaveLength(0);
    for (let i = 0; i < throttle.maxFailures - 1; i++) expectError(await login(email, "wrong password"), 401, "unauthorized");
    expect((await login(email, PASSWORD)).status).toBe(200);
  });

  test("the lock ends when its time is up", async () => {
    const registered = await register();
    const email = registered.user.email;
    for (let i = 0; i < throttle.maxFailures; i++) await login(email, "wrong password");
    expectError(await login(email, PASSWORD), 429, "rate_limited");
    await query(sql`update "auth"."login_attempts" set "locked_until" = now() - interval '1 second' where "account_key" = ${email}`);
    expect((await login(email, PASSWORD)).status).toBe(200);
  });

  test("failures older than the window start a new count", async () => {
    const registered = await register();
    const email = registered.user.email;
    for (let i = 0; i < throttle.maxFailures - 1; i++) await login(email, "wrong password");
    await query(
      sql`update "auth"."login_attempts" set "window_started_at" = now() - ${`${throttle.windowSeconds + 1} seconds`}::interval where "account_key" = ${email}`,
    );
    expectError(await login(email, "wrong password"), 401, "unauthorized");
    const [row] = await query<{ failures: number; locked_until: Date | null }>(
      sql`select "failures", "locked_until" from "auth"."login_attempts" where "account_key" = ${email}`,
    );
    expect(row?.failures).toBe(1);
    expect(row?.locked_until).toBeNull();
  });

  test("one locked account does not affect another", async () => {
    const locked = await register();
    const other = await register();
    for (let i = 0; i < throttle.maxFailures; i++) await login(locked.user.email, "wrong password");
    expectError(await login(locked.user.email, PASSWORD), 429, "rate_limited");
    expect((await login(other.user.email, PASSWORD)).status).toBe(200);
  });
});

describe("round trips", () => {
  test("a successful sign-in costs at most 3 statements", async () => {
    const registered = await register();
    const before = h.database.stats.queries;
    expect((await login(registered.user.email, PASSWORD)).status).toBe(200);
    const used = h.database.stats.queries - before;
    expect(used).toBeLessThanOrEqual(3);
    expect(used).toBe(2);
  });

  test("a failed sign-in costs at most 3 statements, a throttled one 1", async () => {
    const registered = await register();
    let before = h.database.stats.queries;
    await login(registered.user.email, "wrong password");
    expect(h.database.stats.queries - before).toBe(2);
    for (let i = 1; i < throttle.maxFailures; i++) await login(registered.user.email, "wrong password");
    before = h.database.stats.queries;
    expect((await login(registered.user.email, "wrong password")).status).toBe(429);
    expect(h.database.stats.queries - before).toBe(1);
  });
});
