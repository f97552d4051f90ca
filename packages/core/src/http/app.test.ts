import { sql } from "drizzle-orm";
import fc from "fast-check";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as z from "zod/mini";
import { type Database, openDatabase } from "../db/index";
import { AppError } from "../errors";
import { uuidPattern, uuidv7 } from "../ids";
import { configureLog } from "../log";
import { Limit, Uuid } from "../schemas";
import { createTestDatabase, type TestDatabase } from "../testing/database";
import { createServiceApp } from "./app";
import { ACCESS_TOKEN_ALG, createTokenVerifier, userOf } from "./auth";
import { MAX_BODY_BYTES, MAX_VALIDATION_DETAILS } from "./route";
import type { Role, TokenVerifier } from "./types";

const Item = z.object({ id: Uuid, name: z.string(), qty: z.number(), owner: z.string() });
const NewItem = z.object({
  name: z.string().check(z.minLength(1), z.maxLength(50)),
  qty: z.number().check(z.int(), z.positive()),
  tags: z.optional(z.array(z.string())),
  address: z.optional(z.object({ city: z.string() })),
});

/** A tiny service on the kernel: every feature the real services use, nothing else. */
function testService(database: () => Promise<Database>, verifier: TokenVerifier) {
  const { app, routes } = createServiceApp({ name: "things", prefix: "/things", version: "1.2.3", database, verifier });
  routes
    .add(
      {
        method: "post",
        path: "/items",
        operationId: "createItem",
        summary: "Create an item",
        access: "user",
        body: NewItem,
        responses: { 201: { description: "Created", schema: z.object({ item: Item }) } },
      },
      async (c, { body, principal }) => c.json({ item: { id: uuidv7(), name: body.name, qty: body.qty, owner: userOf(principal).userId } }, 201),
    )
    .add(
      {
        method: "get",
        path: "/items/:id",
        operationId: "getItem",
        summary: "One item",
        access: "public",
        params: z.object({ id: Uuid }),
        query: z.object({ limit: Limit }),
        responses: { 200: { description: "The item", schema: z.object({ id: z.string(), limit: z.number() }) } },
      },
      async (c, { params, query }) => c.json({ id: params.id, limit: query.limit }),
    )
    .add(
      {
        method: "delete",
        path: "/items/:id",
        operationId: "deleteItem",
        summary: "Delete an item",
        access: { roles: ["ADMIN"] },
        params: z.object({ id: Uuid }),
        responses: { 204: { description: "Deleted" } },
      },
      async (c) => c.body(null, 204),
    )
    .add(
      {
        method: "get",
        path: "/internal",
        operationId: "getInternal",
        summary: "For admins and services",
        access: { roles: ["ADMIN"], service: true },
        responses: { 200: { description: "ok" } },
      },
      async (c, { principal }) => c.json({ kind: principal?.kind }),
    )
    .add({ method: "get", path: "/boom", operationId: "boom", summary: "Fails", access: "public", responses: {} }, async () => {
      throw new Error("select password_hash from auth.users where email = 'a@b.c' -- hunter2");
    })
    .add({ method: "get", path: "/boom-value", operationId: "boomValue", summary: "Throws a non-Error", access: "public", responses: {} }, async () => {
      throw "hunter2 as a string";
    })
    .add({ method: "get", path: "/conflict", operationId: "conflict", summary: "Domain error", access: "public", responses: {} }, async () => {
      throw new AppError("rate_limited", "Slow down.", { headers: { "retry-after": "7" }, details: { retryAfterSeconds: 7 } });
    })
    .add(
      { method: "get", path: "/db", operationId: "readDatabase", summary: "Reads the database", access: "public", responses: { 200: { description: "ok" } } },
      async (c) => {
        const db = await database();
        await db.db.execute(sql`select 1`);
        return c.json({ ok: true });
      },
    );
  return { app, routes };
}

let database: TestDatabase;
let disposed = false;
let keys: Awaited<ReturnType<typeof generateKeyPair>>;
let verifier: TokenVerifier;
let service: ReturnType<typeof testService>;
let refused: Database;
let refusedService: ReturnType<typeof testService>;

const userId = uuidv7();
async function tokenFor(role: Role): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: "k1" })
    .setSubject(userId)
    .setIssuer("iss")
    .setAudience("aud")
    .setIssuedAt()
    .setExpirationTime("5m")
    .setJti(uuidv7())
    .sign(keys.privateKey);
}

async function call(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  init: { body?: string | ReadableStream<Uint8Array>; json?: unknown; token?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...(init.json === undefined ? {} : { "content-type": "application/json" }), ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const body = init.json === undefined ? init.body : JSON.stringify(init.json);
  const response = await app.request(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected loosely in assertions
  return { status: response.status, headers: response.headers, text, body: json as Record<string, any> };
}

beforeAll(async () => {
  keys = await generateKeyPair(ACCESS_TOKEN_ALG, { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: "k1", alg: ACCESS_TOKEN_ALG };
  verifier = createTokenVerifier({
    issuer: "iss",
    audience: "aud",
    jwks: { keys: [jwk] },
    serviceTokens: {
      async verify(token) {
        if (token === "service-token-payments") return { kind: "service", service: "payments" };
        throw new AppError("unauthorized");
      },
    },
  });
  database = await createTestDatabase([]);
  service = testService(async () => database, verifier);
  // Nothing listens on port 1: every connection is refused.
  refused = await openDatabase("postgres://postgres@127.0.0.1:1/nothing", { maxConnections: 1 });
  refusedService = testService(async () => refused, verifier);
});
afterAll(async () => {
  await refused?.close();
  if (!disposed) await database?.dispose();
});

describe("request ids", () => {
  test("a valid x-request-id is echoed, also on errors", async () => {
    for (const path of ["/things/health", "/things/nope", "/things/boom"]) {
      const res = await call(service.app, "GET", path, { headers: { "x-request-id": "req-42_a.b:c" } });
      expect(res.headers.get("x-request-id"), path).toBe("req-42_a.b:c");
    }
  });

  test("an invalid or too long x-request-id is replaced by a new one", async () => {
    for (const incoming of ["has space", "<script>", "a".repeat(129), "é", "a\tb"]) {
      const res = await call(service.app, "GET", "/things/health", { headers: { "x-request-id": incoming } });
      const id = res.headers.get("x-request-id");
      expect(id).not.toBe(incoming);
      expect(id).toMatch(uuidPattern);
    }
    const longest = "a".repeat(128);
    expect((await call(service.app, "GET", "/things/health", { headers: { "x-request-id": longest } })).headers.get("x-request-id")).toBe(longest);
  });

  test("a request without an id gets a new UUID each time", async () => {
    const a = (await call(service.app, "GET", "/things/health")).headers.get("x-request-id");
    const b = (await call(service.app, "GET", "/things/health")).headers.get("x-request-id");
    expect(a).toMatch(uuidPattern);
    expect(b).toMatch(uuidPattern);
    expect(a).not.toBe(b);
  });
});

describe("error model", () => {
  test("an unknown path is 404 JSON", async () => {
    for (const path of ["/things/nope", "/things/items/x/y", "/elsewhere"]) {
      const res = await call(service.app, "GET", path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.body.error.code).toBe("not_found");
      expect(typeof res.body.error.message).toBe("string");
    }
  });

  test("a known path with another method is 405 JSON with Allow", async () => {
    const res = await call(service.app, "GET", "/things/items");
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(res.body).toEqual({ error: { code: "method_not_allowed", message: expect.any(String) } });
    const put = await call(service.app, "PUT", `/things/items/${uuidv7()}`);
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")?.split(", ").sort()).toEqual(["DELETE", "GET"]);
    const health = await call(service.app, "POST", "/things/health", { json: {} });
    expect(health.status).toBe(405);
    expect(health.headers.get("allow")).toBe("GET");
  });

  test("a body over 1 MB with a declared length is 413", async () => {
    const token = await tokenFor("CUSTOMER");
    const res = await call(service.app, "POST", "/things/items", {
      body: JSON.stringify({ name: "x", qty: 1 }),
      token,
      headers: { "content-type": "application/json", "content-length": String(MAX_BODY_BYTES + 1) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
    const big = await call(service.app, "POST", "/things/items", { json: { name: "x", qty: 1, tags: ["a".repeat(MAX_BODY_BYTES)] }, token });
    expect(big.status).toBe(413);
  });

  test("a chunked body over 1 MB without a length is 413, and is not read to the end", async () => {
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        // 64 MB if read to the end.
        if (pulled >= 64 * 1024 * 1024) return controller.close();
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await call(service.app, "POST", "/things/items", {
      body: endless,
      token: await tokenFor("CUSTOMER"),
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
    expect(pulled).toBeLessThan(4 * MAX_BODY_BYTES);
  });

  test("a chunked body under 1 MB is read normally", async () => {
    const text = JSON.stringify({ name: "streamed", qty: 3, tags: ["b".repeat(300_000)] });
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 10_000) controller.enqueue(bytes.slice(i, i + 10_000));
        controller.close();
      },
    });
    const res = await call(service.app, "POST", "/things/items", {
      body: stream,
      token: await tokenFor("CUSTOMER"),
      headers: { "content-type": "application/json" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.item).toMatchObject({ name: "streamed", qty: 3, owner: userId });
  });

  test("a body that is not JSON by content type is 415", async () => {
    const token = await tokenFor("CUSTOMER");
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", undefined]) {
      const res = await call(service.app, "POST", "/things/items", { body: '{"name":"a","qty":1}', token, headers: type ? { "content-type": type } : {} });
      expect(res.status, String(type)).toBe(415);
      expect(res.body.error.code).toBe("unsupported_media_type");
    }
    for (const type of ["application/json; charset=utf-8", "application/merge-patch+json", "Application/JSON"]) {
      const res = await call(service.app, "POST", "/things/items", { body: '{"name":"a","qty":1}', token, headers: { "content-type": type } });
      expect(res.status, type).toBe(201);
    }
  });

  test("malformed JSON is 400 malformed_json", async () => {
    const token = await tokenFor("CUSTOMER");
    for (const body of ["{", '{"name": "a",}', "nul", "{'name':'a'}"]) {
      const res = await call(service.app, "POST", "/things/items", { body, token, headers: { "content-type": "application/json" } });
      expect(res.status, body).toBe(400);
      expect(res.body.error.code).toBe("malformed_json");
    }
  });

  test("invalid input is 400 validation_failed with the path of every problem", async () => {
    const token = await tokenFor("CUSTOMER");
    const res = await call(service.app, "POST", "/things/items", { json: { name: "", qty: 1.5, tags: ["ok", 7], address: { city: 1 } }, token });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    const paths = (res.body.error.details as { path: string; message: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(["address.city", "name", "qty", "tags.1"]);
    for (const detail of res.body.error.details) expect(detail.message).toEqual(expect.any(String));

    for (const body of [undefined, [], "text", 42, null]) {
      const r = await call(service.app, "POST", "/things/items", {
        token,
        headers: { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("validation_failed");
    }

    const params = await call(service.app, "GET", "/things/items/not-a-uuid");
    expect(params.status).toBe(400);
    expect(params.body.error.details).toEqual([{ path: "id", message: expect.any(String) }]);
    const query = await call(service.app, "GET", `/things/items/${uuidv7()}?limit=0`);
    expect(query.status).toBe(400);
    expect(query.body.error.details).toEqual([{ path: "limit", message: expect.any(String) }]);
    const ok = await call(service.app, "GET", `/things/items/${uuidv7()}?limit=7`);
    expect(ok.status).toBe(200);
    expect(ok.body.limit).toBe(7);
  });

  test("a thrown non-AppError is 500 internal with no message, SQL or stack", async () => {
    for (const path of ["/things/boom", "/things/boom-value"]) {
      const res = await call(service.app, "GET", path);
      expect(res.status, path).toBe(500);
      expect(res.body).toEqual({ error: { code: "internal", message: "Something went wrong on our side." } });
      expect(res.text).not.toMatch(/hunter2|password_hash|select|at .*\.ts/);
      expect(res.headers.get("x-request-id")).toMatch(uuidPattern);
    }
  });

  test("an AppError keeps its status, headers and details", async () => {
    const res = await call(service.app, "GET", "/things/conflict");
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.body).toEqual({ error: { code: "rate_limited", message: "Slow down.", details: { retryAfterSeconds: 7 } } });
  });

  test("a database that cannot be reached is 503 unavailable", async () => {
    const res = await call(refusedService.app, "GET", "/things/db");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: { code: "unavailable", message: expect.any(String) } });
    expect(res.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
  });

  test("arbitrary bodies never produce a 5xx", async () => {
    const token = await tokenFor("CUSTOMER");
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string(),
          fc.record({ name: fc.string(), qty: fc.oneof(fc.integer(), fc.double(), fc.string()), tags: fc.anything() }).map((v) => JSON.stringify(v)),
        ),
        fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8", ""),
        async (body, type) => {
          const res = await call(service.app, "POST", "/things/items", { body, token, headers: type ? { "content-type": type } : {} });
          expect(res.status).toBeLessThan(500);
          expect([201, 400, 415]).toContain(res.status);
          if (res.status !== 201) expect(res.body.error.code).toMatch(/^(validation_failed|malformed_json|unsupported_media_type)$/);
        },
      ),
      { numRuns: 150 },
    );
  });

  test("deeply nested or huge-but-allowed JSON is a 4xx, not a crash", async () => {
    const token = await tokenFor("CUSTOMER");
    const depth = 200_000;
    const nested = `{"name":"a","qty":1,"tags":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const deep = await call(service.app, "POST", "/things/items", { body: nested, token, headers: { "content-type": "application/json" } });
    expect(deep.status).toBe(400);
    const wide = JSON.stringify({ name: "a", qty: 1, tags: Array.from({ length: 100_000 }, () => 1) });
    const many = await call(service.app, "POST", "/things/items", { body: wide, token, headers: { "content-type": "application/json" } });
    expect(many.status).toBe(400);
    // The answer lists the first problems only: a 200 KB request must not produce a multi-megabyte error.
    expect(many.body.error.details).toHaveLength(MAX_VALIDATION_DETAILS);
    expect(many.body.error.details[0]).toEqual({ path: "tags.0", message: expect.any(String) });
    expect(many.text.length).toBeLessThan(10_000);
  });

  test("arbitrary paths and query strings never produce a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.webPath(), fc.webQueryParameters(), async (path, query) => {
        const res = await call(service.app, "GET", `/things/items/${path.replace(/^\//, "")}${query ? `?${query}` : ""}`);
        expect(res.status).toBeLessThan(500);
        expect(res.body.error?.code ?? "ok").toMatch(/^(ok|validation_failed|not_found|method_not_allowed)$/);
      }),
      { numRuns: 150 },
    );
    for (const raw of ["/things/items/%E0%A4%A", "/things/items/%", `/things/items/${uuidv7()}?limit=%ZZ`]) {
      expect((await call(service.app, "GET", raw)).status, raw).toBeLessThan(500);
    }
  });
});

describe("access", () => {
  test("no token or a bad token is 401", async () => {
    const none = await call(service.app, "POST", "/things/items", { json: { name: "a", qty: 1 } });
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("unauthorized");
    for (const authorization of ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer", `Token ${await tokenFor("CUSTOMER")}`]) {
      const res = await call(service.app, "POST", "/things/items", { json: { name: "a", qty: 1 }, headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
  });

  test("authentication is checked before the body is validated", async () => {
    const res = await call(service.app, "POST", "/things/items", { body: "{", headers: { "content-type": "application/json" } });
    expect(res.status).toBe(401);
  });

  test("the role guard answers 403 to other roles and lets the listed ones in", async () => {
    const id = uuidv7();
    expect((await call(service.app, "DELETE", `/things/items/${id}`, { token: await tokenFor("CUSTOMER") })).status).toBe(403);
    expect((await call(service.app, "DELETE", `/things/items/${id}`, { token: await tokenFor("VENDOR") })).status).toBe(403);
    const forbidden = await call(service.app, "DELETE", `/things/items/${id}`, { token: await tokenFor("CUSTOMER") });
    expect(forbidden.body.error.code).toBe("forbidden");
    expect((await call(service.app, "DELETE", `/things/items/${id}`, { token: await tokenFor("ADMIN") })).status).toBe(204);
    expect((await call(service.app, "DELETE", `/things/items/${id}`)).status).toBe(401);
  });

  test("service tokens pass only where the route admits services", async () => {
    expect((await call(service.app, "GET", "/things/internal", { token: "service-token-payments" })).body).toEqual({ kind: "service" });
    expect((await call(service.app, "GET", "/things/internal", { token: await tokenFor("ADMIN") })).body).toEqual({ kind: "user" });
    expect((await call(service.app, "GET", "/things/internal", { token: await tokenFor("CUSTOMER") })).status).toBe(403);
    expect((await call(service.app, "DELETE", `/things/items/${uuidv7()}`, { token: "service-token-payments" })).status).toBe(403);
    expect((await call(service.app, "POST", "/things/items", { json: { name: "a", qty: 1 }, token: "service-token-payments" })).status).toBe(403);
  });
});

describe("openapi.json", () => {
  test("is OpenAPI 3.1 listing every route with its request and response schemas", async () => {
    const res = await call(service.app, "GET", "/things/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toEqual({ title: expect.stringContaining("things"), version: "1.2.3" });
    for (const spec of service.routes.specs) {
      const path = `/things${spec.path}`.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
      const operation = doc.paths[path]?.[spec.method];
      expect(operation, `${spec.method} ${path}`).toBeDefined();
      expect(operation.summary).toBe(spec.summary);
      for (const [status, response] of Object.entries(spec.responses)) {
        expect(operation.responses[status].description).toBe(response.description);
        if (response.schema) expect(operation.responses[status].content["application/json"].schema.type).toBe("object");
      }
      expect(operation.responses.default.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
    }
    const paths = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(paths.sort()).toEqual(
      [
        "get /things/health",
        "post /things/items",
        "get /things/items/{id}",
        "delete /things/items/{id}",
        "get /things/internal",
        "get /things/boom",
        "get /things/boom-value",
        "get /things/conflict",
        "get /things/db",
      ].sort(),
    );

    const create = doc.paths["/things/items"].post;
    const body = create.requestBody.content["application/json"].schema;
    expect(create.requestBody.required).toBe(true);
    expect(body.type).toBe("object");
    expect(Object.keys(body.properties).sort()).toEqual(["address", "name", "qty", "tags"]);
    expect(body.required.sort()).toEqual(["name", "qty"]);
    expect(body.properties.name).toMatchObject({ type: "string", minLength: 1, maxLength: 50 });
    expect(create.responses["201"].content["application/json"].schema.properties.item.properties.id).toMatchObject({ type: "string" });
    expect(create.security).toBeUndefined();

    const read = doc.paths["/things/items/{id}"].get;
    expect(read.security).toEqual([]);
    expect(read.parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "id", in: "path", required: true }),
        expect.objectContaining({ name: "limit", in: "query", required: false }),
      ]),
    );
    expect(doc.components.schemas.Error.required).toEqual(["error"]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
  });
});

describe("request log", () => {
  test("one JSON line per request with method, path, status, ms and request id; no credentials or body", async () => {
    const lines: string[] = [];
    configureLog({ level: "info", sink: (line) => lines.push(line) });
    try {
      const token = await tokenFor("CUSTOMER");
      await call(service.app, "POST", "/things/items?email=someone%40example.com", {
        json: { name: "hunter2-secret-name", qty: 1 },
        token,
        headers: { "x-request-id": "log-test-1" },
      });
      await call(service.app, "GET", "/things/nope", { headers: { "x-request-id": "log-test-2" } });
      await call(service.app, "GET", "/things/boom", { headers: { "x-request-id": "log-test-3" } });
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const requests = parsed.filter((l) => l.msg === "request");
      expect(requests).toHaveLength(3);
      expect(requests[0]).toMatchObject({ level: "info", service: "things", method: "POST", path: "/things/items", status: 201, requestId: "log-test-1" });
      expect(requests[1]).toMatchObject({ method: "GET", path: "/things/nope", status: 404, requestId: "log-test-2" });
      expect(requests[2]).toMatchObject({ method: "GET", path: "/things/boom", status: 500, requestId: "log-test-3" });
      for (const r of requests) {
        expect(typeof r.ms).toBe("number");
        expect(typeof r.time).toBe("string");
      }
      // The failure is logged for operators, with the same request id.
      expect(parsed.find((l) => l.msg === "unhandled error")).toMatchObject({ level: "error", requestId: "log-test-3" });
      const all = lines.join("\n");
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.split(".")[2]);
      expect(all).not.toMatch(/authorization|bearer/i);
      expect(all).not.toContain("hunter2-secret-name");
      expect(all).not.toContain("someone");
      for (const line of lines) expect(line.includes("\n")).toBe(false);
    } finally {
      configureLog({ level: "error", sink: (line) => process.stdout.write(`${line}\n`) });
    }
  });
});

describe("health", () => {
  test("is 200 with the database latency when the database answers", async () => {
    const res = await call(service.app, "GET", "/things/health");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ service: "things", status: "ok", version: "1.2.3", database: { status: "ok", latencyMs: expect.any(Number) } });
    expect(res.body.database.latencyMs).toBeGreaterThanOrEqual(0);
  });

  test("is 503 when the database refuses connections", async () => {
    const res = await call(refusedService.app, "GET", "/things/health");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ service: "things", status: "degraded", version: "1.2.3", database: { status: "down", latencyMs: null } });
  });

  test("is 503 when the database cannot even be opened", async () => {
    const broken = testService(async () => {
      throw new Error("no such database");
    }, verifier);
    const res = await call(broken.app, "GET", "/things/health");
    expect(res.status).toBe(503);
    expect(res.body.database.status).toBe("down");
    const db = await call(broken.app, "GET", "/things/db");
    expect(db.status).toBe(500);
  });

  // Last: closes the file's database.
  test("is 503 once the database is closed, and queries answer 503 unavailable", async () => {
    await database.dispose();
    disposed = true;
    const res = await call(service.app, "GET", "/things/health");
    expect(res.status).toBe(503);
    expect(res.body.database).toEqual({ status: "down", latencyMs: null });
    const query = await call(service.app, "GET", "/things/db");
    expect(query.status).toBe(503);
    expect(query.body.error.code).toBe("unavailable");
  });
});
