/**
 * Every route of every service, from their own OpenAPI documents, fed arbitrary path segments,
 * query strings and bodies as an anonymous caller, a customer and an administrator: the answer
 * is never a 5xx, an error always has the API.md shape, and nothing internal (SQL, stack
 * frames, driver messages) leaks into it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { localServices } from "./services";

let runtime: LocalRuntime;
let dataDir: string;
const tokens: Record<string, string | undefined> = { anonymous: undefined };
const operations: { method: string; path: string }[] = [];

const leaks = /\b(select|insert into|update .* set|delete from)\b|at .+\.(ts|js):\d+|drizzle|postgres|pglite|syntax error|violates/i;

async function request(method: string, path: string, body: string | undefined, token: string | undefined) {
  const response = await runtime.app.request(path, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      "idempotency-key": "fuzz",
    },
    ...(body === undefined ? {} : { body }),
  });
  return { status: response.status, text: await response.text() };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "enclave-fuzz-"));
  runtime = await createLocalRuntime({ env: { DATA_DIR: dataDir, LOCAL_CRONS: "0", SEED: "development", LOG_LEVEL: "error", BUS_MAX_ATTEMPTS: "1" } });
  const login = await request("POST", "/auth/login", JSON.stringify({ email: "admin@enclave.dev", password: "enclave-admin-dev" }), undefined);
  tokens.admin = JSON.parse(login.text).accessToken;
  const registered = await request("POST", "/auth/register", JSON.stringify({ email: "fuzz@example.com", password: "fuzz-password", name: "Fuzz" }), undefined);
  tokens.customer = JSON.parse(registered.text).accessToken;
  for (const { module } of localServices) {
    const document = JSON.parse((await request("GET", `${module.manifest.prefix}/openapi.json`, undefined, undefined)).text);
    for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) operations.push({ method: method.toUpperCase(), path });
    }
  }
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const segment = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), fc.constantFrom("me", "00000000-0000-0000-0000-000000000000", "%00", "..", "' or 1=1 --"));
const query = fc.dictionary(fc.constantFrom("limit", "cursor", "status", "role", "email", "userId", "action", "from", "to", "x"), fc.string({ maxLength: 30 }));
const body = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.string({ maxLength: 200 }),
  fc
    .record({
      email: fc.oneof(fc.emailAddress(), fc.string()),
      password: fc.string({ maxLength: 200 }),
      amount: fc.oneof(fc.string(), fc.double(), fc.constantFrom("0", "-1", "1e3", "99999999999.99", "12.505")),
      recipientEmail: fc.oneof(fc.emailAddress(), fc.string()),
      value: fc.jsonValue(),
      role: fc.string(),
      preferences: fc.jsonValue(),
    })
    .map((r) => JSON.stringify(r)),
);

test("no route answers arbitrary input with a 5xx or leaks internals", { timeout: 300_000 }, async () => {
  expect(operations.length).toBeGreaterThanOrEqual(25);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...operations),
      fc.constantFrom("anonymous", "customer", "admin"),
      fc.array(segment, { minLength: 3, maxLength: 3 }),
      query,
      fc.option(body, { nil: undefined }),
      async (operation, who, segments, params, payload) => {
        let i = 0;
        const path = operation.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(segments[i++] ?? ""));
        const search = new URLSearchParams(params).toString();
        const withBody = ["POST", "PUT", "PATCH", "DELETE"].includes(operation.method) ? payload : undefined;
        const { status, text } = await request(operation.method, search ? `${path}?${search}` : path, withBody, tokens[who]);
        expect(status, `${operation.method} ${path} → ${status} ${text.slice(0, 300)}`).toBeLessThan(500);
        if (status >= 400) {
          const parsed = JSON.parse(text);
          expect(typeof parsed.error.code).toBe("string");
          expect(typeof parsed.error.message).toBe("string");
          expect(text).not.toMatch(leaks);
        }
      },
    ),
    { numRuns: 600 },
  );
});
