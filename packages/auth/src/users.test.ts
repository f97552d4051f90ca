import { createTokenVerifier, type Principal } from "@enclave/core";
import { importSigningKey, type SigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { sql } from "drizzle-orm";
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEFAULT_ADMIN_EMAIL, seedDevelopment } from "./seed";
import { type AuthHarness, call, createAuthHarness } from "./testing";

const ISSUER = "enclave-auth";
const AUDIENCE = "enclave";
/** Stands in for another service's token: this file's verifier maps it to a service principal. */
const SERVICE_TOKEN = "service-token-for-tests";
const ADMIN_PASSWORD = "admin-password-for-tests";

let h: AuthHarness;
let key: SigningKey;
let admin: { id: string; token: string };
let customer: { id: string; email: string; token: string; user: Record<string, unknown> };
let vendorToken: string;

beforeAll(async () => {
  key = await importSigningKey(generatePrivateJwk());
  const users = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [key.publicJwk] } });
  h = await createAuthHarness({
    signingKey: async () => key,
    publicJwk: key.publicJwk,
    verifier: {
      verify: async (token): Promise<Principal> => (token === SERVICE_TOKEN ? { kind: "service", service: "payments" } : users.verify(token)),
    },
  });
  await seedDevelopment(h.ctx, ADMIN_PASSWORD);
  const adminLogin = await call(h.app, "POST", "/auth/login", { email: DEFAULT_ADMIN_EMAIL, password: ADMIN_PASSWORD });
  expect(adminLogin.status, JSON.stringify(adminLogin.body)).toBe(200);
  admin = { id: adminLogin.body.user.id, token: adminLogin.body.accessToken };
  const reg = await call(h.app, "POST", "/auth/register", { email: "Customer@Example.com", password: "customer-password", name: "Cus Tomer" });
  customer = { id: reg.body.user.id, email: reg.body.user.email, token: reg.body.accessToken, user: reg.body.user };
  vendorToken = await signAccessToken(key, h.ctx.tokens, { id: "0190a0a0-0000-7000-8000-0000000000aa", role: "VENDOR" });
});
afterAll(() => h?.dispose());

let counter = 0;
const query = async <T = Record<string, unknown>>(statement: ReturnType<typeof sql>) =>
  ((await h.database.db.execute(statement)) as unknown as { rows: T[] }).rows;

function expectError(res: { status: number; body: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(res.body)).not.toMatch(/scrypt\$|password_hash|select .* from|\.ts:\d+|invalid input syntax/i);
}

async function newCustomer() {
  const res = await call(h.app, "POST", "/auth/register", { email: `people-${++counter}@example.com`, password: "customer-password", name: "Someone" });
  expect(res.status).toBe(201);
  return res.body as { user: { id: string; email: string; role: string; updatedAt: string }; accessToken: string; refreshToken: string };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A token with the right claims, signed by `signer` with the given header and claim changes. */
async function forge(options: { signer?: SigningKey; kid?: string; claims?: Record<string, unknown>; iat?: number; exp?: number } = {}) {
  const signer = options.signer ?? key;
  const iat = options.iat ?? now();
  return new SignJWT({ role: "ADMIN", sub: customer.id, iss: ISSUER, aud: AUDIENCE, jti: `jti-${++counter}`, ...options.claims })
    .setProtectedHeader({ alg: "ES256", kid: options.kid ?? signer.kid, typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(options.exp ?? iat + 900)
    .sign(signer.privateKey);
}

describe("GET /auth/me", () => {
  test("answers the signed-in user, never the hash", async () => {
    const res = await call(h.app, "GET", "/auth/me", undefined, customer.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user: customer.user });
    expect(JSON.stringify(res.body)).not.toMatch(/scrypt|password/i);
  });

  test("the admin's token is a user token too", async () => {
    const res = await call(h.app, "GET", "/auth/me", undefined, admin.token);
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: admin.id, email: DEFAULT_ADMIN_EMAIL, role: "ADMIN" });
  });

  test("a service token is not a user: 403", async () => {
    expectError(await call(h.app, "GET", "/auth/me", undefined, SERVICE_TOKEN), 403, "forbidden");
  });

  const rejected: [string, () => Promise<Record<string, string>>][] = [
    ["no Authorization header", async () => ({})],
    ["an empty Bearer", async () => ({ authorization: "Bearer " })],
    ["a Basic scheme", async () => ({ authorization: `Basic ${Buffer.from("a:b").toString("base64")}` })],
    ["a token without a scheme", async () => ({ authorization: customer.token })],
    ["garbage", async () => ({ authorization: "Bearer not.a.jwt" })],
    ["random characters", async () => ({ authorization: "Bearer %%%%" })],
    ["a truncated token", async () => ({ authorization: `Bearer ${customer.token.slice(0, -10)}` })],
    [
      "a tampered payload",
      async () => {
        const [header, , signature] = customer.token.split(".");
        return { authorization: `Bearer ${header}.${b64({ ...decodeJwt(customer.token), role: "ADMIN" })}.${signature}` };
      },
    ],
    ["an expired token", async () => ({ authorization: `Bearer ${await forge({ iat: now() - 3600, exp: now() - 60 })}` })],
    ["a token not yet valid", async () => ({ authorization: `Bearer ${await forge({ claims: { nbf: now() + 600 } })}` })],
    ["a wrong issuer", async () => ({ authorization: `Bearer ${await forge({ claims: { iss: "someone-else" } })}` })],
    ["a wrong audience", async () => ({ authorization: `Bearer ${await forge({ claims: { aud: "other-app" } })}` })],
    ["no jti", async () => ({ authorization: `Bearer ${await forge({ claims: { jti: undefined } })}` })],
    ["no sub", async () => ({ authorization: `Bearer ${await forge({ claims: { sub: undefined } })}` })],
    ["a sub that is not a user id", async () => ({ authorization: `Bearer ${await forge({ claims: { sub: "not-a-uuid" } })}` })],
    ["an unknown role", async () => ({ authorization: `Bearer ${await forge({ claims: { role: "ROOT" } })}` })],
    ["no role", async () => ({ authorization: `Bearer ${await forge({ claims: { role: undefined } })}` })],
    [
      "a token signed by another key",
      async () => {
        const other = await importSigningKey(generatePrivateJwk());
        return { authorization: `Bearer ${await forge({ signer: other })}` };
      },
    ],
    [
      "another key claiming our key id",
      async () => {
        const other = await importSigningKey(generatePrivateJwk());
        return { authorization: `Bearer ${await forge({ signer: other, kid: key.kid })}` };
      },
    ],
    [
      "an HS256 token keyed with our public key",
      async () => {
        const secret = new TextEncoder().encode(JSON.stringify(key.publicJwk));
        const token = await new SignJWT({ role: "ADMIN", jti: "forged" })
          .setProtectedHeader({ alg: "HS256", kid: key.kid, typ: "JWT" })
          .setSubject(customer.id)
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setIssuedAt()
          .setExpirationTime("10m")
          .sign(secret);
        return { authorization: `Bearer ${token}` };
      },
    ],
    [
      "alg none",
      async () => {
        const payload = { sub: customer.id, role: "ADMIN", iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, jti: "none" };
        return { authorization: `Bearer ${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.` };
      },
    ],
    [
      "alg none with our key id and a copied signature",
      async () => {
        const signature = customer.token.split(".")[2];
        const payload = { sub: customer.id, role: "ADMIN", iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, jti: "none" };
        return { authorization: `Bearer ${b64({ alg: "none", kid: key.kid })}.${b64(payload)}.${signature}` };
      },
    ],
  ];
  test.each(rejected)("answers 401 for %s", async (_, headers) => {
    const res = await call(h.app, "GET", "/auth/me", undefined, undefined, await headers());
    expectError(res, 401, "unauthorized");
  });

  test("a valid token of a user that no longer exists answers 404, not 500", async () => {
    const ghost = await signAccessToken(key, h.ctx.tokens, { id: "0190a0a0-0000-7000-8000-00000000dead", role: "CUSTOMER" });
    expectError(await call(h.app, "GET", "/auth/me", undefined, ghost), 404, "not_found");
  });

  test("reads cost at most 2 statements (1 measured)", async () => {
    const before = h.database.stats.queries;
    expect((await call(h.app, "GET", "/auth/me", undefined, customer.token)).status).toBe(200);
    expect(h.database.stats.queries - before).toBe(1);
  });
});

describe("GET /auth/users/{id}", () => {
  test("an ADMIN gets any user", async () => {
    const res = await call(h.app, "GET", `/auth/users/${customer.id}`, undefined, admin.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user: customer.user });
  });

  test("another service gets any user", async () => {
    const res = await call(h.app, "GET", `/auth/users/${customer.id}`, undefined, SERVICE_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(customer.id);
  });

  test("accepts an upper-case UUID", async () => {
    const res = await call(h.app, "GET", `/auth/users/${customer.id.toUpperCase()}`, undefined, admin.token);
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(customer.id);
  });

  test("an unknown id answers 404", async () => {
    expectError(await call(h.app, "GET", "/auth/users/0190a0a0-0000-7000-8000-000000000000", undefined, admin.token), 404, "not_found");
  });

  test.each(["CUSTOMER", "VENDOR"])("a %s gets 403, even for their own id", async (role) => {
    const token = role === "CUSTOMER" ? customer.token : vendorToken;
    expectError(await call(h.app, "GET", `/auth/users/${customer.id}`, undefined, token), 403, "forbidden");
  });

  test("no token answers 401", async () => {
    expectError(await call(h.app, "GET", `/auth/users/${customer.id}`), 401, "unauthorized");
  });

  test.each([
    ["a word", "me"],
    ["a number", "123"],
    ["a UUID with a suffix", `${"0190a0a0-0000-7000-8000-000000000000"}x`],
    ["a UUID without dashes", "0190a0a0000070008000000000000000"],
    ["SQL", encodeURIComponent("' or 1=1 --")],
    ["a NUL byte", "%00"],
  ])("a malformed id (%s) answers 400 validation_failed", async (_, id) => {
    const res = await call(h.app, "GET", `/auth/users/${id}`, undefined, admin.token);
    expectError(res, 400, "validation_failed");
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: "id" })]);
  });

  test("reads cost at most 2 statements (1 measured)", async () => {
    const before = h.database.stats.queries;
    expect((await call(h.app, "GET", `/auth/users/${customer.id}`, undefined, admin.token)).status).toBe(200);
    expect(h.database.stats.queries - before).toBe(1);
    const missing = h.database.stats.queries;
    expect((await call(h.app, "GET", "/auth/users/0190a0a0-0000-7000-8000-000000000000", undefined, admin.token)).status).toBe(404);
    expect(h.database.stats.queries - missing).toBe(1);
  });
});

describe("GET /auth/users?email=", () => {
  test("an ADMIN finds a user by email, in any letter case", async () => {
    for (const email of [customer.email, customer.email.toLowerCase(), customer.email.toUpperCase()]) {
      const res = await call(h.app, "GET", `/auth/users?email=${encodeURIComponent(email)}`, undefined, admin.token);
      expect(res.status, email).toBe(200);
      expect(res.body).toEqual({ user: customer.user });
    }
  });

  test("another service finds a user by email", async () => {
    const res = await call(h.app, "GET", `/auth/users?email=${encodeURIComponent(customer.email)}`, undefined, SERVICE_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(customer.id);
  });

  test("an unknown email answers 404", async () => {
    expectError(await call(h.app, "GET", "/auth/users?email=nobody%40example.com", undefined, admin.token), 404, "not_found");
  });

  test("a CUSTOMER gets 403, no token 401", async () => {
    expectError(await call(h.app, "GET", `/auth/users?email=${encodeURIComponent(customer.email)}`, undefined, customer.token), 403, "forbidden");
    expectError(await call(h.app, "GET", `/auth/users?email=${encodeURIComponent(customer.email)}`), 401, "unauthorized");
  });

  test.each([
    ["no email", ""],
    ["an empty email", "?email="],
    ["a malformed email", "?email=not-an-email"],
    ["a NUL byte", "?email=a%00%40b.io"],
    ["an SQL-looking email", `?email=${encodeURIComponent("' or ''='")}`],
    ["a 255-character email", `?email=${"a".repeat(243)}%40example.com`],
  ])("%s answers 400 validation_failed", async (_, search) => {
    const res = await call(h.app, "GET", `/auth/users${search}`, undefined, admin.token);
    expectError(res, 400, "validation_failed");
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: "email" })]);
  });

  test("reads cost at most 2 statements (1 measured)", async () => {
    const before = h.database.stats.queries;
    expect((await call(h.app, "GET", `/auth/users?email=${encodeURIComponent(customer.email)}`, undefined, admin.token)).status).toBe(200);
    expect(h.database.stats.queries - before).toBe(1);
  });
});

describe("PATCH /auth/users/{id}/role", () => {
  /** `token: null` sends no Authorization header. */
  const patch = (id: string, body: unknown, token: string | null = admin.token, headers: Record<string, string> = {}) =>
    call(h.app, "PATCH", `/auth/users/${id}/role`, body, token ?? undefined, headers);

  test("an ADMIN changes a role: 200, the database changes, user.role_changed carries the true from and to", async () => {
    const target = await newCustomer();
    const before = h.bus.entries.length;
    const res = await patch(target.user.id, { role: "VENDOR" }, admin.token, { "x-request-id": "role-change-1" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.user).toMatchObject({ id: target.user.id, email: target.user.email, role: "VENDOR" });
    expect(Date.parse(res.body.user.updatedAt)).toBeGreaterThanOrEqual(Date.parse(target.user.updatedAt));
    expect(JSON.stringify(res.body)).not.toMatch(/scrypt|password/i);
    const [row] = await query<{ role: string }>(sql`select "role" from "auth"."users" where "id" = ${target.user.id}`);
    expect(row?.role).toBe("VENDOR");

    const events = h.bus.entries.slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]?.source).toBe("enclave.auth");
    expect(events[0]?.detailType).toBe("user.role_changed");
    expect(events[0]?.detail).toMatchObject({
      type: "user.role_changed",
      version: 1,
      data: { userId: target.user.id, from: "CUSTOMER", to: "VENDOR" },
      metadata: { correlationId: "role-change-1", actor: admin.id },
    });
    const [outbox] = await query<{ published_at: Date | null; type: string }>(
      sql`select "published_at", "type" from "auth"."outbox" where "id" = ${events[0]?.detail.id}`,
    );
    expect(outbox?.type).toBe("user.role_changed");
    expect(outbox?.published_at).not.toBeNull();

    // The next change reports the role the user really had.
    const again = await patch(target.user.id, { role: "ADMIN" });
    expect(again.status).toBe(200);
    expect(h.bus.entries.at(-1)?.detail.data).toEqual({ userId: target.user.id, from: "VENDOR", to: "ADMIN" });
  });

  test("setting the role a user already has answers 200 and emits nothing", async () => {
    const target = await newCustomer();
    const events = h.bus.entries.length;
    const [outboxBefore] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox"`);
    const res = await patch(target.user.id, { role: "CUSTOMER" });
    expect(res.status).toBe(200);
    expect(res.body.user).toEqual(target.user);
    expect(h.bus.entries.length).toBe(events);
    const [outboxAfter] = await query<{ n: number }>(sql`select count(*)::int as n from "auth"."outbox"`);
    expect(outboxAfter?.n).toBe(outboxBefore?.n);
  });

  test("a promoted user's refreshed token carries the new role and opens ADMIN routes", async () => {
    const target = await newCustomer();
    expect((await patch(target.user.id, { role: "ADMIN" })).status).toBe(200);
    const refreshed = await call(h.app, "POST", "/auth/refresh", { refreshToken: target.refreshToken });
    expect(decodeJwt(refreshed.body.accessToken).role).toBe("ADMIN");
    expect((await call(h.app, "GET", `/auth/users/${customer.id}`, undefined, refreshed.body.accessToken)).status).toBe(200);
  });

  test.each([
    ["a CUSTOMER", () => customer.token],
    ["a VENDOR", () => vendorToken],
    ["another service", () => SERVICE_TOKEN],
  ])("%s gets 403 and nothing changes", async (_, token) => {
    const target = await newCustomer();
    const events = h.bus.entries.length;
    expectError(await patch(target.user.id, { role: "ADMIN" }, token()), 403, "forbidden");
    const [row] = await query<{ role: string }>(sql`select "role" from "auth"."users" where "id" = ${target.user.id}`);
    expect(row?.role).toBe("CUSTOMER");
    expect(h.bus.entries.length).toBe(events);
  });

  test("a user cannot promote themselves", async () => {
    expectError(await patch(customer.id, { role: "ADMIN" }, customer.token), 403, "forbidden");
  });

  test("no token answers 401", async () => {
    expectError(await patch(customer.id, { role: "ADMIN" }, null), 401, "unauthorized");
    const [row] = await query<{ role: string }>(sql`select "role" from "auth"."users" where "id" = ${customer.id}`);
    expect(row?.role).toBe("CUSTOMER");
  });

  test("an unknown user answers 404", async () => {
    expectError(await patch("0190a0a0-0000-7000-8000-000000000000", { role: "VENDOR" }), 404, "not_found");
  });

  test("a malformed id answers 400", async () => {
    expectError(await patch("not-a-uuid", { role: "VENDOR" }), 400, "validation_failed");
  });

  test.each([
    ["a missing role", {}],
    ["a lower-case role", { role: "admin" }],
    ["an unknown role", { role: "ROOT" }],
    ["a numeric role", { role: 1 }],
    ["a null role", { role: null }],
    ["an array of roles", { role: ["ADMIN"] }],
    ["an extra field", { role: "VENDOR", email: "x@y.io" }],
    ["an array body", [{ role: "VENDOR" }]],
    ["a null body", "null"],
  ])("%s answers 400 validation_failed", async (_, body) => {
    const target = await newCustomer();
    expectError(await patch(target.user.id, body), 400, "validation_failed");
    const [row] = await query<{ role: string }>(sql`select "role" from "auth"."users" where "id" = ${target.user.id}`);
    expect(row?.role).toBe("CUSTOMER");
  });

  test("a change costs at most 3 statements; no change and unknown users 1", async () => {
    const target = await newCustomer();
    let before = h.database.stats.queries;
    expect((await patch(target.user.id, { role: "VENDOR" })).status).toBe(200);
    const used = h.database.stats.queries - before;
    expect(used).toBeLessThanOrEqual(3);
    expect(used).toBe(3);
    before = h.database.stats.queries;
    expect((await patch(target.user.id, { role: "VENDOR" })).status).toBe(200);
    expect(h.database.stats.queries - before).toBe(1);
    before = h.database.stats.queries;
    expect((await patch("0190a0a0-0000-7000-8000-000000000000", { role: "VENDOR" })).status).toBe(404);
    expect(h.database.stats.queries - before).toBe(1);
  });
});

describe("GET /auth/.well-known/jwks.json", () => {
  test("serves the public key only, cacheable, and it verifies issued tokens", async () => {
    const before = h.database.stats.queries;
    const res = await call(h.app, "GET", "/auth/.well-known/jwks.json");
    expect(h.database.stats.queries - before).toBe(0);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/);
    expect(res.body.keys).toHaveLength(1);
    const [jwk] = res.body.keys;
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: key.kid, x: expect.any(String), y: expect.any(String) });
    for (const secret of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(jwk).not.toHaveProperty(secret);

    const login = await call(h.app, "POST", "/auth/login", { email: DEFAULT_ADMIN_EMAIL, password: ADMIN_PASSWORD });
    const { payload, protectedHeader } = await jwtVerify(login.body.accessToken, createLocalJWKSet(res.body), {
      algorithms: ["ES256"],
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    expect(protectedHeader).toMatchObject({ alg: "ES256", kid: key.kid, typ: "JWT" });
    expect(payload).toMatchObject({ sub: admin.id, role: "ADMIN", iss: ISSUER, aud: AUDIENCE, jti: expect.any(String) });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(h.ctx.tokens.accessTtlSeconds);
  });

  test("does not verify a token signed by another key", async () => {
    const res = await call(h.app, "GET", "/auth/.well-known/jwks.json");
    const other = await importSigningKey(generatePrivateJwk());
    const foreign = await signAccessToken(other, h.ctx.tokens, { id: customer.id, role: "ADMIN" });
    await expect(jwtVerify(foreign, createLocalJWKSet(res.body), { algorithms: ["ES256"] })).rejects.toThrow();
  });

  test("needs no token and rejects other methods with 405", async () => {
    const res = await call(h.app, "POST", "/auth/.well-known/jwks.json", {});
    expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toBe("GET");
  });
});

describe("development seed", () => {
  test("is idempotent: one admin, one user.registered", async () => {
    await seedDevelopment(h.ctx, "a-different-password");
    const rows = await query<{ role: string }>(sql`select "role" from "auth"."users" where lower("email") = ${DEFAULT_ADMIN_EMAIL}`);
    expect(rows).toEqual([{ role: "ADMIN" }]);
    const events = h.bus.entries.filter((e) => e.detailType === "user.registered" && e.detail.data.email === DEFAULT_ADMIN_EMAIL);
    expect(events).toHaveLength(1);
    expect(events[0]?.detail.data.role).toBe("ADMIN");
    // The first password stays.
    expect((await call(h.app, "POST", "/auth/login", { email: DEFAULT_ADMIN_EMAIL, password: ADMIN_PASSWORD })).status).toBe(200);
  });
});
