import { configureLog } from "@enclave/core";
import { sql } from "drizzle-orm";
import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAuthApp } from "./routes";
import { seedDevelopment } from "./seed";
import { type AuthHarness, call, createAuthHarness } from "./testing";

/** The API.md conventions, route by route: media types, sizes, syntax, 404/405, request ids, health. */

let h: AuthHarness;
let adminToken: string;
let customerToken: string;
let customerId: string;
beforeAll(async () => {
  h = await createAuthHarness();
  await seedDevelopment(h.ctx, "admin-password-for-tests");
  adminToken = (await call(h.app, "POST", "/auth/login", { email: "admin@enclave.dev", password: "admin-password-for-tests" })).body.accessToken;
  const reg = await call(h.app, "POST", "/auth/register", { email: "http@example.com", password: "http-password", name: "Http" });
  customerToken = reg.body.accessToken;
  customerId = reg.body.user.id;
});
afterAll(() => h?.dispose());

const errorCodes = [
  "validation_failed",
  "malformed_json",
  "unauthorized",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "unavailable",
];

/** The API.md error shape, and nothing that looks like internals. */
function expectErrorShape(status: number, body: unknown) {
  expect(status).toBeGreaterThanOrEqual(400);
  const error = (body as { error?: Record<string, unknown> })?.error;
  expect(error, JSON.stringify(body)).toBeDefined();
  expect(Object.keys(body as object)).toEqual(["error"]);
  expect(errorCodes).toContain(error?.code);
  expect(typeof error?.message).toBe("string");
  expect(Object.keys(error ?? {}).every((k) => ["code", "message", "details"].includes(k))).toBe(true);
  expect(JSON.stringify(body)).not.toMatch(/scrypt\$|password_hash|token_hash|select .* from|insert into|\.ts:\d+|node_modules|at async/i);
}

function expectError(res: { status: number; body: unknown; headers: Headers }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.status === 503 || res.status < 500).toBe(true);
  expect((res.body as { error: { code: string } }).error.code).toBe(code);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expectErrorShape(res.status, res.body);
}

/** Raw request: exact headers and body, nothing added. */
async function raw(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
  const response = await h.app.request(path, { method, headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body };
}

const USER_ID = "0190a0a0-0000-7000-8000-000000000001";

/** Every route that takes a JSON body, with a body that passes validation and the token it needs. */
const bodyRoutes: { method: string; path: () => string; body: unknown; token?: () => string }[] = [
  { method: "POST", path: () => "/auth/register", body: { email: "x@example.com", password: "password-1", name: "X" } },
  { method: "POST", path: () => "/auth/login", body: { email: "x@example.com", password: "password-1" } },
  { method: "POST", path: () => "/auth/refresh", body: { refreshToken: "abc" } },
  { method: "POST", path: () => "/auth/logout", body: { refreshToken: "abc" } },
  { method: "PATCH", path: () => `/auth/users/${customerId}/role`, body: { role: "CUSTOMER" }, token: () => adminToken },
];
const routeName = (r: (typeof bodyRoutes)[number]) => `${r.method} ${r.path().replace(customerId, "{id}")}`;

describe.each(bodyRoutes)("JSON body checks", (route) => {
  const auth = (): Record<string, string> => (route.token ? { authorization: `Bearer ${route.token()}` } : {});

  test(`${routeName(route)}: non-JSON content types answer 415`, async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "text/json"]) {
      const res = await raw(route.method, route.path(), { headers: { "content-type": type, ...auth() }, body: JSON.stringify(route.body) });
      expectError(res, 415, "unsupported_media_type");
    }
  });

  test(`${routeName(route)}: a body without a content type answers 415`, async () => {
    expectError(await raw(route.method, route.path(), { headers: auth(), body: JSON.stringify(route.body) }), 415, "unsupported_media_type");
  });

  test(`${routeName(route)}: JSON media types with parameters or a +json suffix are accepted`, async () => {
    for (const type of ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]) {
      const res = await raw(route.method, route.path(), { headers: { "content-type": type, ...auth() }, body: JSON.stringify(route.body) });
      expect(res.status, `${type}: ${JSON.stringify(res.body)}`).not.toBe(415);
      expect(res.status).toBeLessThan(500);
      if (res.status >= 400) expect((res.body as { error: { code: string } }).error.code).not.toBe("validation_failed");
    }
  });

  test.each(["{", "{email:1}", "{'a':1}", '{"a":1,}', "[1,2", "undefined", "NaN", '{"a":1}{"b":2}', "\u0000"])(
    `${routeName(route)}: malformed JSON %j answers 400 malformed_json`,
    async (text) => {
      const res = await raw(route.method, route.path(), { headers: { "content-type": "application/json", ...auth() }, body: text });
      expectError(res, 400, "malformed_json");
    },
  );

  test(`${routeName(route)}: an empty body answers 400 validation_failed`, async () => {
    expectError(await raw(route.method, route.path(), { headers: { "content-type": "application/json", ...auth() }, body: "" }), 400, "validation_failed");
  });

  test(`${routeName(route)}: a body over 1 MB answers 413, also when it is not JSON`, async () => {
    const big = JSON.stringify({ ...(route.body as object), padding: "x".repeat(1024 * 1024) });
    expectError(await raw(route.method, route.path(), { headers: { "content-type": "application/json", ...auth() }, body: big }), 413, "payload_too_large");
    expectError(await raw(route.method, route.path(), { headers: { "content-type": "text/plain", ...auth() }, body: big }), 413, "payload_too_large");
  });

  test(`${routeName(route)}: exactly 1 MB is not too large`, async () => {
    const base = JSON.stringify(route.body);
    const exact = `${base}${" ".repeat(1024 * 1024 - Buffer.byteLength(base))}`;
    const res = await raw(route.method, route.path(), { headers: { "content-type": "application/json", ...auth() }, body: exact });
    expect(res.status).not.toBe(413);
    expect(res.status).toBeLessThan(500);
  });

  test(`${routeName(route)}: an extra field answers 400 validation_failed`, async () => {
    const res = await call(h.app, route.method, route.path(), { ...(route.body as object), extra: 1 }, route.token?.());
    expectError(res, 400, "validation_failed");
  });

  test(`${routeName(route)}: a "__proto__" key is an extra field, not a prototype`, async () => {
    const text = JSON.stringify(route.body).replace(/^\{/, '{"__proto__":{"role":"ADMIN"},');
    const res = await raw(route.method, route.path(), { headers: { "content-type": "application/json", ...auth() }, body: text });
    expectError(res, 400, "validation_failed");
  });
});

describe("routing", () => {
  test.each([
    ["GET", "/auth"],
    ["GET", "/auth/"],
    ["GET", "/auth/nope"],
    ["POST", "/auth/register/extra"],
    ["GET", "/auth/users/x/y/z"],
    ["GET", "/somewhere-else"],
    ["GET", "/auth/.well-known/openid-configuration"],
  ])("%s %s answers 404 JSON", async (method, path) => {
    expectError(await call(h.app, method, path, undefined, adminToken), 404, "not_found");
  });

  test.each([
    ["GET", "/auth/register", "POST"],
    ["PUT", "/auth/login", "POST"],
    ["DELETE", "/auth/refresh", "POST"],
    ["GET", "/auth/logout", "POST"],
    ["POST", "/auth/me", "GET"],
    ["DELETE", `/auth/users/${USER_ID}`, "GET"],
    ["PUT", "/auth/users", "GET"],
    ["GET", `/auth/users/${USER_ID}/role`, "PATCH"],
    ["PUT", `/auth/users/${USER_ID}/role`, "PATCH"],
    ["DELETE", "/auth/.well-known/jwks.json", "GET"],
    ["POST", "/auth/health", "GET"],
  ])("%s %s answers 405 JSON with Allow: %s", async (method, path, allow) => {
    const res = await call(h.app, method, path, undefined, adminToken);
    expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toBe(allow);
  });

  test("405 is answered before authentication and body checks", async () => {
    const res = await raw("PUT", `/auth/users/${USER_ID}/role`, { headers: { "content-type": "text/plain" }, body: "x" });
    expectError(res, 405, "method_not_allowed");
  });
});

describe("x-request-id", () => {
  const cases: [string, () => Promise<{ status: number; headers: Headers }>][] = [
    [
      "a 201",
      () =>
        call(h.app, "POST", "/auth/register", { email: `rid-${Date.now()}@example.com`, password: "password-1", name: "R" }, undefined, {
          "x-request-id": "abc-123",
        }),
    ],
    ["a 200", () => call(h.app, "GET", "/auth/me", undefined, customerToken, { "x-request-id": "abc-123" })],
    ["a 400", () => call(h.app, "POST", "/auth/login", {}, undefined, { "x-request-id": "abc-123" })],
    ["a 401", () => call(h.app, "GET", "/auth/me", undefined, undefined, { "x-request-id": "abc-123" })],
    ["a 404", () => call(h.app, "GET", "/auth/nowhere", undefined, undefined, { "x-request-id": "abc-123" })],
    ["a 405", () => call(h.app, "GET", "/auth/login", undefined, undefined, { "x-request-id": "abc-123" })],
    ["a 415", () => raw("POST", "/auth/login", { headers: { "x-request-id": "abc-123" }, body: "x" })],
    ["a 204", () => call(h.app, "POST", "/auth/logout", { refreshToken: "x" }, undefined, { "x-request-id": "abc-123" })],
  ];
  test.each(cases)("is echoed on %s", async (_, send) => {
    const res = await send();
    expect(res.headers.get("x-request-id")).toBe("abc-123");
  });

  test("is generated when absent, and differs per request", async () => {
    const a = await call(h.app, "GET", "/auth/.well-known/jwks.json");
    const b = await call(h.app, "GET", "/auth/.well-known/jwks.json");
    expect(a.headers.get("x-request-id")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(b.headers.get("x-request-id")).not.toBe(a.headers.get("x-request-id"));
  });

  test.each([
    ["with spaces", "a b"],
    ["with a header-injection attempt", "abc%0d%0aset-cookie:x"],
    ["longer than 128 characters", "a".repeat(129)],
    ["with quotes", 'a"b'],
  ])("a caller's id %s is replaced by a generated one", async (_, id) => {
    const res = await call(h.app, "GET", "/auth/.well-known/jwks.json", undefined, undefined, { "x-request-id": id });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("an id of 128 safe characters is kept", async () => {
    const id = "A.b_c:d-".repeat(16);
    const res = await call(h.app, "GET", "/auth/.well-known/jwks.json", undefined, undefined, { "x-request-id": id });
    expect(res.headers.get("x-request-id")).toBe(id);
  });
});

describe("health and OpenAPI", () => {
  test("GET /auth/health reports the database", async () => {
    const res = await call(h.app, "GET", "/auth/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ service: "auth", status: "ok", version: "1", database: { status: "ok", latencyMs: expect.any(Number) } });
  });

  test("GET /auth/openapi.json documents every route of API.md", async () => {
    const res = await call(h.app, "GET", "/auth/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe("3.1.0");
    const operations = Object.entries(res.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations).toEqual(
      expect.arrayContaining([
        "POST /auth/register",
        "POST /auth/login",
        "POST /auth/refresh",
        "POST /auth/logout",
        "GET /auth/me",
        "GET /auth/users/{id}",
        "GET /auth/users",
        "PATCH /auth/users/{id}/role",
        "GET /auth/.well-known/jwks.json",
        "GET /auth/health",
      ]),
    );
    const register = res.body.paths["/auth/register"].post.requestBody.content["application/json"].schema;
    expect(register.required).toEqual(expect.arrayContaining(["email", "password", "name"]));
    expect(register.properties.password).toMatchObject({ minLength: 8, maxLength: 128 });
    expect(register.additionalProperties).toBe(false);
  });
});

/** Collects log lines (all levels) while `run` runs. */
async function captureLogs(run: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  configureLog({ level: "debug", sink: (line) => lines.push(line) });
  try {
    await run();
  } finally {
    configureLog({ level: "error", sink: (line) => process.stdout.write(`${line}\n`) });
  }
  return lines;
}

describe("when the database is down", () => {
  const down = () => {
    const error = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    return createAuthApp({ ...h.ctx, database: () => Promise.reject(error) });
  };

  test("health answers 503 with the database down", async () => {
    const res = await call(down(), "GET", "/auth/health");
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ service: "auth", status: "degraded", database: { status: "down", latencyMs: null } });
  });

  test.each([
    ["POST", "/auth/register", { email: "down@example.com", password: "password-1", name: "D" }],
    ["POST", "/auth/login", { email: "down@example.com", password: "password-1" }],
    ["POST", "/auth/refresh", { refreshToken: "x" }],
    ["POST", "/auth/logout", { refreshToken: "x" }],
  ])("%s %s answers 503 unavailable without internals", async (method, path, body) => {
    let res: Awaited<ReturnType<typeof call>> | undefined;
    const logs = await captureLogs(async () => {
      res = await call(down(), method, path, body);
    });
    expectError(res as Awaited<ReturnType<typeof call>>, 503, "unavailable");
    expect(logs.some((line) => JSON.parse(line).msg === "dependency unavailable")).toBe(true);
  });

  test("validation still answers 400 without touching the database", async () => {
    expectError(await call(down(), "POST", "/auth/register", { email: "nope" }), 400, "validation_failed");
  });

  test("the JWKS does not need the database", async () => {
    expect((await call(down(), "GET", "/auth/.well-known/jwks.json")).status).toBe(200);
  });
});

describe("logs", () => {
  test("one line per request with method, path, status, duration and request id; never a password, token or hash", async () => {
    const password = "log-secret-password";
    let tokens: string[] = [];
    const logs = await captureLogs(async () => {
      const reg = await call(h.app, "POST", "/auth/register", { email: "logs@example.com", password, name: "Logs" }, undefined, { "x-request-id": "log-1" });
      const login = await call(h.app, "POST", "/auth/login", { email: "logs@example.com", password });
      const refreshed = await call(h.app, "POST", "/auth/refresh", { refreshToken: login.body.refreshToken });
      await call(h.app, "POST", "/auth/login", { email: "logs@example.com", password: `${password}-wrong` });
      tokens = [reg.body.accessToken, reg.body.refreshToken, login.body.accessToken, login.body.refreshToken, refreshed.body.refreshToken];
    });
    const requests = logs.map((line) => JSON.parse(line)).filter((entry) => entry.msg === "request");
    expect(requests).toHaveLength(4);
    expect(requests[0]).toMatchObject({
      level: "info",
      service: "auth",
      method: "POST",
      path: "/auth/register",
      status: 201,
      ms: expect.any(Number),
      requestId: "log-1",
    });
    const text = logs.join("\n");
    expect(text).not.toContain(password);
    expect(text).not.toMatch(/scrypt\$/);
    for (const token of tokens) expect(text).not.toContain(token);
  });

  test("a failing statement answers 500 internal; the log names the cause but never the statement's parameters", async () => {
    // A constraint the code does not expect makes the registration statement itself fail.
    await h.database.db.execute(sql`alter table "auth"."users" add constraint "test_no_boom" check ("name" <> 'Boom')`);
    const password = "internal-error-password";
    let res: Awaited<ReturnType<typeof call>> | undefined;
    try {
      const logs = await captureLogs(async () => {
        res = await call(h.app, "POST", "/auth/register", { email: "boom@example.com", password, name: "Boom" });
      });
      expect(res?.status).toBe(500);
      expect(res?.body).toEqual({ error: { code: "internal", message: expect.any(String) } });
      expect(JSON.stringify(res?.body)).not.toMatch(/test_no_boom|constraint|insert|users/i);
      const errors = logs.map((line) => JSON.parse(line)).filter((entry) => entry.level === "error");
      expect(errors).toHaveLength(1);
      expect(errors[0].message).toMatch(/test_no_boom/);
      const text = logs.join("\n");
      expect(text).not.toMatch(/scrypt\$|boom@example\.com|params:/);
      expect(text).not.toContain(password);
    } finally {
      await h.database.db.execute(sql`alter table "auth"."users" drop constraint "test_no_boom"`);
    }
  });
});

describe("arbitrary input (property tests)", () => {
  const publicBodyRoutes = ["/auth/register", "/auth/login", "/auth/refresh", "/auth/logout"];

  test("any JSON value as a body never yields 5xx; errors always have the API.md shape", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...publicBodyRoutes), fc.jsonValue(), async (path, value) => {
        const res = await call(h.app, "POST", path, JSON.stringify(value));
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) expectErrorShape(res.status, res.body);
      }),
      { numRuns: 300 },
    );
  });

  test("any text as a JSON body never yields 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...publicBodyRoutes), fc.string({ unit: "binary", maxLength: 200 }), async (path, text) => {
        const res = await raw("POST", path, { headers: { "content-type": "application/json" }, body: text });
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) expectErrorShape(res.status, res.body);
      }),
      { numRuns: 300 },
    );
  });

  const anyString = fc.oneof(fc.string({ unit: "binary", maxLength: 140 }), fc.string({ unit: "grapheme", maxLength: 140 }));
  const emailish = fc.oneof(
    fc.emailAddress(),
    anyString,
    fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.constantFrom("@example.com", "@EXAMPLE.com", "")).map(([a, b]) => a + b),
  );

  test("registrations with arbitrary field values answer 201, 400 or 409 only; a 201 stores what it answers", async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ email: emailish, password: anyString, name: anyString }), async (body) => {
        const res = await call(h.app, "POST", "/auth/register", body);
        expect([201, 400, 409], JSON.stringify(res.body)).toContain(res.status);
        if (res.status !== 201) return expectErrorShape(res.status, res.body);
        expect(res.body.user.email).toBe(body.email.trim());
        expect(res.body.user.name).toBe(body.name.trim());
        const me = await call(h.app, "GET", "/auth/me", undefined, res.body.accessToken);
        expect(me.body.user).toEqual(res.body.user);
      }),
      { numRuns: 200 },
    );
  });

  test("sign-ins with arbitrary field values answer 400 or 401 only (or 429 once throttled)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.record({ email: emailish, password: anyString }), async (body) => {
        const res = await call(h.app, "POST", "/auth/login", body);
        expect([400, 401, 429], JSON.stringify(res.body)).toContain(res.status);
        expectErrorShape(res.status, res.body);
      }),
      { numRuns: 200 },
    );
  });

  test("arbitrary path ids and email queries on the user routes never yield 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", minLength: 1, maxLength: 60 }), async (value) => {
        for (const path of [`/auth/users/${encodeURIComponent(value)}`, `/auth/users?email=${encodeURIComponent(value)}`]) {
          const res = await call(h.app, "GET", path, undefined, adminToken);
          expect(res.status, path).toBeLessThan(500);
          if (res.status >= 400) expectErrorShape(res.status, res.body);
        }
      }),
      { numRuns: 200 },
    );
  });
});
