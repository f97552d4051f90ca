/**
 * The services' OpenAPI documents are what client generators and "Try it out" work from: every
 * operation is named, every error it can answer is declared, and every example is one the route
 * itself accepts, checked with the same zod schemas that validate requests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AnyRouteSpec } from "@enclave/core";
import { examplesOf } from "@enclave/core/http/openapi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as z from "zod/mini";
import { openApiDocuments, type ServiceDocument } from "./openapi-documents";
import { createLocalRuntime, type LocalRuntime } from "./runtime";

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  example?: unknown;
}
interface Response {
  description: string;
  content?: Record<string, { schema?: Record<string, unknown> }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  parameters: Parameter[];
  requestBody?: { content: Record<string, { example?: unknown; schema?: Record<string, unknown> }> };
  responses: Record<string, Response>;
}

let documents: ServiceDocument[];

beforeAll(async () => {
  documents = await openApiDocuments();
});

const openApiPath = (prefix: string, path: string) => `${prefix}${path === "/" ? "" : path}`.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** Every route of every service with the operation its document gives it. */
function operations(): { service: string; spec: AnyRouteSpec; operation: Operation; label: string }[] {
  return documents.flatMap(({ service, prefix, document, specs }) =>
    specs.map((spec) => {
      const path = openApiPath(prefix, spec.path);
      const operation = (document.paths as Record<string, Record<string, Operation>>)[path]?.[spec.method];
      if (!operation) throw new Error(`${spec.method} ${path} is not in the ${service} document`);
      return { service, spec, operation, label: `${spec.method.toUpperCase()} ${path}` };
    }),
  );
}

const problems = (result: { success: boolean; error?: z.core.$ZodError }) =>
  result.success ? "" : JSON.stringify(result.error?.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));

const errorRef = { $ref: "#/components/schemas/Error" };

describe("OpenAPI documents", () => {
  test("every operation has a camelCase operationId, unique across all services", () => {
    const ids = operations().map(({ operation }) => operation.operationId);
    expect(ids.length).toBeGreaterThanOrEqual(26);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-zA-Z0-9]*$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(["registerUser", "login", "getMe", "listPayments", "createPayment", "cancelPayment", "getAuditLogs"]));
  });

  test("every operation has a summary, a description and its service's tag, described at the top", () => {
    for (const { document, service } of documents) {
      const info = document.info as Record<string, unknown>;
      expect(info.description, service).toEqual(expect.any(String));
      expect(info.license, service).toMatchObject({ name: expect.any(String) });
      expect(document.tags).toEqual([{ name: service, description: expect.any(String) }]);
    }
    for (const { operation, service, label } of operations()) {
      expect(operation.summary, label).toEqual(expect.any(String));
      expect(operation.description, label).toEqual(expect.any(String));
      expect(operation.tags, label).toEqual([service]);
    }
  });

  test("every protected operation declares 401 and 403, every operation with input 400, all with the Error schema", () => {
    for (const { spec, operation, label } of operations()) {
      const expected = [
        ...(spec.access === "public" ? [] : ["401", "403"]),
        ...(spec.body || spec.params || spec.query || spec.headers ? ["400"] : []),
        ...(spec.body ? ["413", "415"] : []),
      ];
      for (const status of expected) {
        expect(operation.responses[status]?.content?.["application/json"]?.schema, `${label} ${status}`).toEqual(errorRef);
      }
      // The route's own errors too: every 4xx and 5xx without a body of its own is the error shape.
      for (const [status, response] of Object.entries(operation.responses)) {
        if (status === "default" || Number(status) >= 400) {
          const own = spec.responses[Number(status)]?.schema;
          if (!own) expect(response.content?.["application/json"]?.schema, `${label} ${status}`).toEqual(errorRef);
        }
      }
    }
  });

  test("resources, pages and request bodies are named components, referenced with $ref", () => {
    const names = Object.fromEntries(
      documents.map(({ service, document }) => [service, Object.keys((document.components as { schemas: object }).schemas).sort()]),
    );
    expect(names.auth).toEqual(expect.arrayContaining(["Error", "User", "UserResponse", "AuthResult", "TokenPair", "RegisterRequest", "LoginRequest"]));
    expect(names.profile).toEqual(expect.arrayContaining(["Error", "Profile", "ProfileResponse", "UpdateProfileRequest"]));
    expect(names.payments).toEqual(
      expect.arrayContaining(["Error", "Payment", "PaymentPage", "PaymentResponse", "Transaction", "TransactionList", "CreatePaymentRequest"]),
    );
    expect(names.admin).toEqual(expect.arrayContaining(["Error", "AuditLog", "AuditLogPage", "ConfigItem", "ConfigList", "PutConfigRequest"]));
    for (const { spec, operation, label } of operations()) {
      if (spec.body) expect(operation.requestBody?.content["application/json"]?.schema?.$ref, label).toMatch(/^#\/components\/schemas\/[A-Z]\w+Request$/);
    }
    const payments = documents.find((d) => d.service === "payments")?.document as { paths: Record<string, Record<string, Operation>> };
    expect(payments.paths["/payments"]?.get?.responses["200"]?.content?.["application/json"]?.schema).toEqual({ $ref: "#/components/schemas/PaymentPage" });
  });

  test("a component name means the same thing in every service, so one client can merge all four documents", () => {
    const seen = new Map<string, { service: string; value: unknown }>();
    for (const { service, document } of documents) {
      for (const [kind, entries] of Object.entries(document.components as Record<string, Record<string, unknown>>)) {
        for (const [name, value] of Object.entries(entries)) {
          const first = seen.get(`${kind}/${name}`);
          if (first) expect(value, `components/${kind}/${name} of ${service} and ${first.service}`).toEqual(first.value);
          else seen.set(`${kind}/${name}`, { service, value });
        }
      }
    }
  });

  test("every request body and parameter has an example that the route's own schemas accept", () => {
    for (const { spec, operation, label } of operations()) {
      for (const parameter of operation.parameters) expect(parameter.example, `${label} ${parameter.in} ${parameter.name}`).toBeDefined();
      if (spec.body) {
        const example = operation.requestBody?.content["application/json"]?.example;
        expect(example, `${label} body`).toBeDefined();
        expect(problems(z.safeParse(spec.body, example)), `${label} body`).toBe("");
        for (const other of examplesOf(spec.body) ?? []) expect(problems(z.safeParse(spec.body, other)), `${label} body ${JSON.stringify(other)}`).toBe("");
      }
      const values = (location: Parameter["in"]) =>
        Object.fromEntries(operation.parameters.filter((p) => p.in === location).map((p) => [p.name, p.example as unknown]));
      if (spec.params) expect(problems(z.safeParse(spec.params, values("path"))), `${label} path`).toBe("");
      // Query values arrive as text, whatever the example's JSON type.
      if (spec.query) {
        const query = Object.fromEntries(Object.entries(values("query")).map(([name, value]) => [name, String(value)]));
        expect(problems(z.safeParse(spec.query, query)), `${label} query`).toBe("");
      }
      for (const [name, header] of Object.entries(spec.headers ?? {})) {
        if (header.schema) expect(problems(z.safeParse(header.schema, values("header")[name])), `${label} header ${name}`).toBe("");
      }
    }
  });

  test("every pattern means the same to any regex engine (no Unicode property classes)", () => {
    const patterns: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === "object") {
        for (const [key, item] of Object.entries(value)) {
          if (key === "pattern" && typeof item === "string") patterns.push(item);
          else walk(item);
        }
      }
    };
    for (const { document } of documents) walk(document);
    expect(patterns.length).toBeGreaterThan(0);
    for (const pattern of patterns) {
      expect(pattern).not.toMatch(/\\[pP]\{/);
      expect(() => new RegExp(pattern)).not.toThrow();
      expect(() => new RegExp(pattern, "u")).not.toThrow();
    }
  });
});

/**
 * What "Try it out" does with the documents' examples, against the whole system with the
 * development data set: no example is rejected as invalid. Ids in examples name nothing that
 * exists, so those routes may answer 404 (or 403); everything else succeeds.
 */
describe("Try it out with the documented examples", () => {
  let runtime: LocalRuntime;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "enclave-examples-"));
    runtime = await createLocalRuntime({ env: { DATA_DIR: dataDir, LOCAL_CRONS: "0", SEED: "development", LOG_LEVEL: "error", BUS_MAX_ATTEMPTS: "1" } });
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function send(operation: Operation, method: string, path: string, token?: string) {
    let url = path;
    const query = new URLSearchParams();
    const headers: Record<string, string> = {};
    for (const parameter of operation.parameters) {
      const value = String(parameter.example);
      if (parameter.in === "path") url = url.replace(`{${parameter.name}}`, encodeURIComponent(value));
      else if (parameter.in === "query") query.set(parameter.name, value);
      else headers[parameter.name] = value;
    }
    const example = operation.requestBody?.content["application/json"]?.example;
    if (example !== undefined) headers["content-type"] = "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    const search = query.toString();
    const response = await runtime.app.request(search ? `${url}?${search}` : url, {
      method: method.toUpperCase(),
      headers,
      ...(example === undefined ? {} : { body: JSON.stringify(example) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  test("no example request is answered 4xx for its input, and the ones that need nothing else succeed", { timeout: 120_000 }, async () => {
    const byId = new Map<string, { method: string; path: string; operation: Operation }>();
    for (const { document } of documents) {
      for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, Operation>>)) {
        for (const [method, operation] of Object.entries(methods)) byId.set(operation.operationId ?? "", { method, path, operation });
      }
    }
    const call = (operationId: string, token?: string) => {
      const found = byId.get(operationId);
      if (!found) throw new Error(`no operation ${operationId}`);
      return send(found.operation, found.method, found.path, token);
    };

    // Ada registers and signs in exactly as the examples say; the administrator is the seeded one.
    const registered = await call("registerUser");
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
    const signedIn = await call("login");
    expect(signedIn.status).toBe(200);
    const ada = signedIn.body.accessToken as string;
    const admin = (
      await runtime.app.request("/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "admin@enclave.dev", password: "enclave-admin-dev" }),
      })
    ).json() as Promise<{ accessToken: string }>;
    const adminToken = (await admin).accessToken;

    const expected: Record<string, [token: string | undefined, statuses: number[]]> = {
      refreshSession: [undefined, [401]], // the example token was never issued
      logout: [undefined, [204]],
      getMe: [ada, [200]],
      getUser: [adminToken, [404]],
      findUserByEmail: [adminToken, [200]],
      changeUserRole: [adminToken, [404]],
      getJwks: [undefined, [200]],
      getMyProfile: [ada, [200]],
      updateMyProfile: [ada, [200]],
      getProfile: [adminToken, [404]],
      createPayment: [ada, [201]],
      listPayments: [ada, [200]],
      getPayment: [ada, [404]],
      listPaymentTransactions: [ada, [404]],
      cancelPayment: [ada, [404]],
      getAuditLogs: [adminToken, [200]],
      listConfigItems: [adminToken, [200]],
      getConfigItem: [adminToken, [200]],
      putConfigItem: [adminToken, [200]],
      deleteConfigItem: [adminToken, [204]],
    };
    for (const [operationId, [token, statuses]] of Object.entries(expected)) {
      const { status, body } = await call(operationId, token);
      expect(statuses, `${operationId} → ${status} ${JSON.stringify(body)}`).toContain(status);
    }
    for (const id of byId.keys()) {
      if (!id.endsWith("Health")) expect([...Object.keys(expected), "registerUser", "login"], "every operation is tried").toContain(id);
    }
    // The same key and body again is the replay of the first answer, not a second payment.
    const replay = await call("createPayment", ada);
    expect(replay.status).toBe(201);
  });
});
