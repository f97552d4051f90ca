import { sweepOutbox } from "@enclave/core/events/sweeper";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { authOutbox } from "./auth.sql";
import { type AuthHarness, call, createAuthHarness } from "./testing";
import { hashRefreshToken } from "./tokens";

let h: AuthHarness;
beforeAll(async () => {
  h = await createAuthHarness();
});
afterAll(() => h?.dispose());
beforeEach(() => {
  h.bus.down = false;
});

let counter = 0;
const uniqueEmail = (prefix = "user") => `${prefix}-${++counter}@example.com`;

const query = async <T = Record<string, unknown>>(statement: ReturnType<typeof sql>) =>
  ((await h.database.db.execute(statement)) as unknown as { rows: T[] }).rows;

function expectError(res: { status: number; body: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(Object.keys((res.body as { error: object }).error).every((k) => ["code", "message", "details"].includes(k))).toBe(true);
  expect(JSON.stringify(res.body)).not.toMatch(/scrypt\$|password_hash|insert into|select .* from|\.ts:\d+/i);
}

const valid = () => ({ email: uniqueEmail(), password: "correct horse battery", name: "Ada Lovelace" });

describe("POST /auth/register", () => {
  test("creates a CUSTOMER and answers 201 with the user and a token pair, never the hash", async () => {
    const input = valid();
    const res = await call(h.app, "POST", "/auth/register", input);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(Object.keys(res.body).sort()).toEqual(["accessToken", "refreshToken", "user"]);
    expect(res.body.user).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      email: input.email,
      name: input.name,
      role: "CUSTOMER",
      emailVerified: false,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updatedAt: expect.stringMatching(/Z$/),
    });
    expect(res.body.accessToken.split(".")).toHaveLength(3);
    expect(res.body.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(res.body)).not.toMatch(/scrypt|passwordHash|password_hash/);

    const [row] = await query<{ email: string; role: string; password_hash: string }>(
      sql`select "email", "role", "password_hash" from "auth"."users" where "id" = ${res.body.user.id}`,
    );
    expect(row?.email).toBe(input.email);
    expect(row?.role).toBe("CUSTOMER");
    expect(row?.password_hash).toMatch(/^scrypt\$10\$8\$1\$/);
    expect(row?.password_hash).not.toContain(input.password);
  });

  test("stores only a hash of the refresh token, with an absolute expiry", async () => {
    const res = await call(h.app, "POST", "/auth/register", valid());
    const rows = await query<{ token_hash: string; expires_at: Date; used_at: unknown; revoked_at: unknown }>(
      sql`select "token_hash", "expires_at", "used_at", "revoked_at" from "auth"."refresh_tokens" where "user_id" = ${res.body.user.id}`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(hashRefreshToken(res.body.refreshToken));
    expect(rows[0]?.token_hash).not.toContain(res.body.refreshToken);
    expect(rows[0]?.used_at).toBeNull();
    expect(rows[0]?.revoked_at).toBeNull();
    const days = (new Date(rows[0]?.expires_at as Date).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  test("trims the email and name", async () => {
    const email = uniqueEmail("trim");
    const res = await call(h.app, "POST", "/auth/register", { email: `  ${email} `, password: "password-1", name: "  Grace  " });
    expect(res.status).toBe(201);
    expect(res.body.user.email).toBe(email);
    expect(res.body.user.name).toBe("Grace");
  });

  test("answers 409 conflict for an existing email in any letter case, and changes nothing", async () => {
    const email = uniqueEmail("Dup");
    expect((await call(h.app, "POST", "/auth/register", { ...valid(), email })).status).toBe(201);
    const events = h.bus.entries.length;
    for (const variant of [email, email.toLowerCase(), email.toUpperCase(), ` ${email.toUpperCase()} `]) {
      const res = await call(h.app, "POST", "/auth/register", { ...valid(), email: variant });
      expectError(res, 409, "conflict");
    }
    const [count] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."users" where lower("email") = ${email.toLowerCase()}`);
    expect(count?.n).toBe(1);
    const [outbox] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox" where "detail"->'data'->>'email' ilike ${email}`);
    expect(outbox?.n).toBe(1);
    expect(h.bus.entries.length).toBe(events);
  });

  test("two concurrent registrations of one email: exactly one account, one 201 and one 409", async () => {
    const email = uniqueEmail("race");
    const results = await Promise.all([
      call(h.app, "POST", "/auth/register", { ...valid(), email }),
      call(h.app, "POST", "/auth/register", { ...valid(), email: email.toUpperCase() }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const [count] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."users" where lower("email") = ${email}`);
    expect(count?.n).toBe(1);
    const [events] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox" where lower("detail"->'data'->>'email') = ${email}`);
    expect(events?.n).toBe(1);
  });

  test.each([
    ["8 characters", "a".repeat(8)],
    ["128 characters", "b".repeat(128)],
    ["non-ASCII", "pässwörd✓"],
    ["spaces only", " ".repeat(12)],
  ])("accepts a password of %s (no composition rules)", async (_, password) => {
    const res = await call(h.app, "POST", "/auth/register", { ...valid(), password });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const login = await call(h.app, "POST", "/auth/login", { email: res.body.user.email, password });
    expect(login.status).toBe(200);
  });

  const badBodies: [string, unknown, string][] = [
    ["a missing email", { password: "password-1", name: "N" }, "email"],
    ["a missing password", { email: "a@b.io", name: "N" }, "password"],
    ["a missing name", { email: "a@b.io", password: "password-1" }, "name"],
    ["an extra field", { email: "a@b.io", password: "password-1", name: "N", role: "ADMIN" }, ""],
    ["an extra emailVerified", { email: "a@b.io", password: "password-1", name: "N", emailVerified: true }, ""],
    ["a numeric email", { email: 42, password: "password-1", name: "N" }, "email"],
    ["a boolean password", { email: "a@b.io", password: true, name: "N" }, "password"],
    ["a null name", { email: "a@b.io", password: "password-1", name: null }, "name"],
    ["an object name", { email: "a@b.io", password: "password-1", name: { first: "N" } }, "name"],
    ["an array email", { email: ["a@b.io"], password: "password-1", name: "N" }, "email"],
    ["a 7-character password", { email: "a@b.io", password: "1234567", name: "N" }, "password"],
    ["a 129-character password", { email: "a@b.io", password: "p".repeat(129), name: "N" }, "password"],
    ["an empty password", { email: "a@b.io", password: "", name: "N" }, "password"],
    ["an email without @", { email: "not-an-email", password: "password-1", name: "N" }, "email"],
    ["an email without domain", { email: "a@", password: "password-1", name: "N" }, "email"],
    ["an email with spaces inside", { email: "a b@c.io", password: "password-1", name: "N" }, "email"],
    ["an email with a NUL byte", { email: "a\u0000@b.io", password: "password-1", name: "N" }, "email"],
    ["a 255-character email", { email: `${"a".repeat(243)}@example.com`, password: "password-1", name: "N" }, "email"],
    ["an SQL-looking email", { email: "x' or '1'='1", password: "password-1", name: "N" }, "email"],
    ["an empty name", { email: "a@b.io", password: "password-1", name: "" }, "name"],
    ["a blank name", { email: "a@b.io", password: "password-1", name: "   " }, "name"],
    ["a 101-character name", { email: "a@b.io", password: "password-1", name: "n".repeat(101) }, "name"],
    ["a name with a NUL byte", { email: "a@b.io", password: "password-1", name: "a\u0000b" }, "name"],
    ["a name with a newline", { email: "a@b.io", password: "password-1", name: "a\nb" }, "name"],
    ["an array body", [{ email: "a@b.io", password: "password-1", name: "N" }], ""],
    ["a string body", '"a@b.io"', ""],
    ["a null body", "null", ""],
    ["a number body", "42", ""],
    ["an empty object", {}, "email"],
  ];
  test.each(badBodies)("answers 400 validation_failed for %s", async (_, body, path) => {
    const before = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."users"`);
    const res = await call(h.app, "POST", "/auth/register", body);
    expectError(res, 400, "validation_failed");
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.any(String) })]));
    const after = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."users"`);
    expect(after[0]?.n).toBe(before[0]?.n);
  });

  test("never echoes the submitted password, even in validation details", async () => {
    const secret = "s3cret-but-too-long-".repeat(8);
    const res = await call(h.app, "POST", "/auth/register", { email: "bad", password: secret, name: "N" });
    expectError(res, 400, "validation_failed");
    expect(JSON.stringify(res.body)).not.toContain("s3cret");
  });
});

describe("user.registered", () => {
  test("is published with the API.md envelope, correlated to the request, and its outbox row is marked published", async () => {
    const input = valid();
    const requestId = `req-register-${counter}`;
    const before = h.bus.entries.length;
    const res = await call(h.app, "POST", "/auth/register", input, undefined, { "x-request-id": requestId });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-request-id")).toBe(requestId);
    const published = h.bus.entries.slice(before);
    expect(published).toHaveLength(1);
    const entry = published[0];
    expect(entry?.source).toBe("enclave.auth");
    expect(entry?.detailType).toBe("user.registered");
    expect(entry?.detail).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      type: "user.registered",
      version: 1,
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      data: { userId: res.body.user.id, email: input.email, name: input.name, role: "CUSTOMER" },
      metadata: { correlationId: requestId, actor: res.body.user.id },
    });
    const rows = await query<{ id: string; source: string; type: string; detail: unknown; published_at: Date | null }>(
      sql`select "id", "source", "type", "detail", "published_at" from "auth"."outbox" where "id" = ${entry?.detail.id}`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.source).toBe("enclave.auth");
    expect(rows[0]?.type).toBe("user.registered");
    expect(rows[0]?.detail).toEqual(entry?.detail);
    expect(rows[0]?.published_at).not.toBeNull();
  });

  test("uses a generated request id as the correlation id when the caller sends none", async () => {
    const before = h.bus.entries.length;
    const res = await call(h.app, "POST", "/auth/register", valid());
    const requestId = res.headers.get("x-request-id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.bus.entries[before]?.detail.metadata.correlationId).toBe(requestId);
  });

  test("a registration still succeeds while the bus is down; the outbox row waits for the sweeper", async () => {
    h.bus.down = true;
    const before = h.bus.entries.length;
    const input = valid();
    const res = await call(h.app, "POST", "/auth/register", input);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(h.bus.entries.length).toBe(before);
    const pending = await query<{ id: string; published_at: Date | null; attempts: number }>(
      sql`select "id", "published_at", "attempts" from "auth"."outbox" where "detail"->'data'->>'userId' = ${res.body.user.id}`,
    );
    expect(pending).toHaveLength(1);
    expect(pending[0]?.published_at).toBeNull();

    // A sweep while the bus is still down records the failure and keeps the row.
    const failed = await sweepOutbox(h.database.db, { outbox: authOutbox, bus: h.bus }, { graceMs: 0 });
    expect(failed).toEqual({ published: 0, failed: 1 });
    const [afterFailure] = await query<{ published_at: Date | null; attempts: number; last_error: string }>(
      sql`select "published_at", "attempts", "last_error" from "auth"."outbox" where "id" = ${pending[0]?.id}`,
    );
    expect(afterFailure?.published_at).toBeNull();
    expect(afterFailure?.attempts).toBe(1);
    expect(afterFailure?.last_error).toBe("bus down");

    h.bus.down = false;
    const swept = await sweepOutbox(h.database.db, { outbox: authOutbox, bus: h.bus }, { graceMs: 0 });
    expect(swept).toEqual({ published: 1, failed: 0 });
    expect(h.bus.entries.slice(before)).toHaveLength(1);
    const entry = h.bus.entries[before];
    expect(entry?.source).toBe("enclave.auth");
    expect(entry?.detailType).toBe("user.registered");
    expect(entry?.detail.id).toBe(pending[0]?.id);
    expect(entry?.detail.data).toEqual({ userId: res.body.user.id, email: input.email, name: input.name, role: "CUSTOMER" });
    const [published] = await query<{ published_at: Date | null }>(sql`select "published_at" from "auth"."outbox" where "id" = ${pending[0]?.id}`);
    expect(published?.published_at).not.toBeNull();
    // Nothing is left to publish: a second sweep sends nothing twice.
    expect(await sweepOutbox(h.database.db, { outbox: authOutbox, bus: h.bus }, { graceMs: 0 })).toEqual({ published: 0, failed: 0 });
  });

  test("no event and no outbox row for a rejected registration", async () => {
    const [before] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox"`);
    const events = h.bus.entries.length;
    expectError(await call(h.app, "POST", "/auth/register", { email: "x@y.io", password: "short", name: "N" }), 400, "validation_failed");
    const [after] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox"`);
    expect(after?.n).toBe(before?.n);
    expect(h.bus.entries.length).toBe(events);
  });
});

describe("round trips", () => {
  test("a registration costs at most 3 statements (2 measured: change + events, mark published)", async () => {
    const before = h.database.stats.queries;
    const res = await call(h.app, "POST", "/auth/register", valid());
    expect(res.status).toBe(201);
    expect(h.database.stats.queries - before).toBeLessThanOrEqual(3);
    expect(h.database.stats.queries - before).toBe(2);
  });

  test("a duplicate registration costs one statement", async () => {
    const input = valid();
    await call(h.app, "POST", "/auth/register", input);
    const before = h.database.stats.queries;
    expect((await call(h.app, "POST", "/auth/register", input)).status).toBe(409);
    expect(h.database.stats.queries - before).toBe(1);
  });

  test("a rejected body never reaches the database", async () => {
    const before = h.database.stats.queries;
    await call(h.app, "POST", "/auth/register", { email: "nope" });
    expect(h.database.stats.queries - before).toBe(0);
  });
});
