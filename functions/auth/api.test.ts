import { configureLog, rowsOf } from "@enclave/core";
import { generatePrivateJwk } from "@enclave/core/keys";
import { type ApiGatewayEventOptions, apiGatewayEvent } from "@enclave/core/testing/aws-events";
import { type FunctionDatabase, functionDatabase, jsonOf, overrideEnv, putEventsEndpoint } from "@enclave/core/testing/lambda";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

/**
 * The auth Lambda as API Gateway (HTTP API, payload 2.0) invokes it: configuration from the
 * environment, the real event shape (base64 body, comma-joined headers, cookies), and events
 * published with PutEvents to a local endpoint that records them.
 */

type LambdaResult = { statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: boolean };
type Handler = (event: unknown, context: unknown) => Promise<LambdaResult>;

const lambdaContext = { awsRequestId: "lambda-request-1", functionName: "enclave-test-auth-api", getRemainingTimeInMillis: () => 10_000 };

let handler: Handler;
let closeHandlerDatabase: () => Promise<void>;
let handlerQuery: <T>(statement: ReturnType<typeof sql>) => Promise<T[]>;
let database: FunctionDatabase | undefined;
let restoreEnv: (() => void) | undefined;
// A PutEvents endpoint that accepts everything and remembers it.
const eventBridge = putEventsEndpoint();
const putEvents = eventBridge.requests;

beforeAll(async () => {
  const eventBusEndpoint = await eventBridge.listen();
  database = await functionDatabase("auth");
  restoreEnv = overrideEnv({
    STAGE: "test",
    LOG_LEVEL: "error",
    AUTH_DATABASE_URL: database.url,
    AUTH_SIGNING_KEY: JSON.stringify(generatePrivateJwk()),
    EVENT_BUS_NAME: "enclave-test-bus",
    EVENT_BUS_ENDPOINT: eventBusEndpoint,
    AWS_REGION: "us-east-1",
  });
  // The module reads its configuration when it loads: import it only now.
  handler = (await import("./api")).handler as unknown as Handler;
  const { authContext } = await import("@enclave/auth/deployed");
  handlerQuery = async <T>(statement: ReturnType<typeof sql>) => rowsOf<T>(await (await authContext.database()).db.execute(statement));
  closeHandlerDatabase = async () => (await authContext.database()).close();
});

afterAll(async () => {
  await closeHandlerDatabase?.();
  await database?.dispose();
  await eventBridge.close();
  restoreEnv?.();
  configureLog({ level: "error" });
});

// API Gateway joins repeated headers with commas and passes cookies separately.
const gatewayHeaders = { accept: "application/json,text/plain;q=0.9", "x-forwarded-for": "203.0.113.7,10.0.0.1", "user-agent": "enclave-tests" };

async function invoke(options: ApiGatewayEventOptions) {
  const result = await handler(apiGatewayEvent({ ...options, headers: { ...gatewayHeaders, ...options.headers } }), lambdaContext);
  return { ...result, json: jsonOf(result) };
}

const json = { "content-type": "application/json" };
const registration = { email: "Lambda.User@Example.com", password: "lambda-password-1", name: "Zoë 🚀 Lambda" };

describe("functions/auth/api handler", () => {
  test("register: 201 with the user, the request id echoed, the row stored and user.registered sent with PutEvents", async () => {
    const res = await invoke({
      method: "POST",
      path: "/auth/register",
      body: JSON.stringify(registration),
      headers: { ...json, "x-request-id": "apigw-req-1" },
    });
    expect(res.statusCode, JSON.stringify(res.json)).toBe(201);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.headers["x-request-id"]).toBe("apigw-req-1");
    expect(res.isBase64Encoded).toBe(false);
    expect(res.json.user).toMatchObject({ email: registration.email, name: registration.name, role: "CUSTOMER", emailVerified: false });
    expect(JSON.stringify(res.json)).not.toMatch(/scrypt|password/i);

    const [row] = await handlerQuery<{ email: string; name: string }>(sql`select "email", "name" from "auth"."users" where "id" = ${res.json.user.id}`);
    expect(row).toEqual({ email: registration.email, name: registration.name });

    expect(putEvents).toHaveLength(1);
    expect(putEvents[0]?.target).toBe("AWSEvents.PutEvents");
    const [entry] = putEvents[0]?.body.Entries ?? [];
    expect(entry).toMatchObject({ Source: "enclave.auth", DetailType: "user.registered", EventBusName: "enclave-test-bus" });
    const detail = JSON.parse(entry?.Detail ?? "{}");
    expect(detail).toMatchObject({
      type: "user.registered",
      version: 1,
      data: { userId: res.json.user.id, email: registration.email, name: registration.name, role: "CUSTOMER" },
      metadata: { correlationId: "apigw-req-1", actor: res.json.user.id },
    });
    const [outbox] = await handlerQuery<{ published_at: Date | null }>(sql`select "published_at" from "auth"."outbox" where "id" = ${detail.id}`);
    expect(outbox?.published_at).not.toBeNull();
  });

  test("login: 200 with tokens; the access token opens /auth/me through the same handler", async () => {
    const res = await invoke({
      method: "POST",
      path: "/auth/login",
      body: JSON.stringify({ email: registration.email.toLowerCase(), password: registration.password }),
      headers: json,
    });
    expect(res.statusCode, JSON.stringify(res.json)).toBe(200);
    expect(res.json.user.email).toBe(registration.email);
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const me = await invoke({ method: "GET", path: "/auth/me", headers: { authorization: `Bearer ${res.json.accessToken}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json.user.id).toBe(res.json.user.id);

    const refreshed = await invoke({ method: "POST", path: "/auth/refresh", body: JSON.stringify({ refreshToken: res.json.refreshToken }), headers: json });
    expect(refreshed.statusCode).toBe(200);
    const reused = await invoke({ method: "POST", path: "/auth/refresh", body: JSON.stringify({ refreshToken: res.json.refreshToken }), headers: json });
    expect(reused.statusCode).toBe(401);
  });

  test("login with a wrong password: 401 in the error shape", async () => {
    const res = await invoke({
      method: "POST",
      path: "/auth/login",
      body: JSON.stringify({ email: registration.email, password: "wrong-password" }),
      headers: json,
    });
    expect(res.statusCode).toBe(401);
    expect(res.json).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
  });

  test("a body API Gateway did not base64-encode is read as is", async () => {
    const res = await invoke({
      method: "POST",
      path: "/auth/login",
      body: JSON.stringify({ email: registration.email, password: registration.password }),
      base64: false,
      headers: json,
    });
    expect(res.statusCode).toBe(200);
  });

  test.each([
    ["missing fields", { body: JSON.stringify({ email: "x@example.com" }), headers: json }, 400, "validation_failed"],
    ["a short password", { body: JSON.stringify({ email: "x@example.com", password: "short", name: "X" }), headers: json }, 400, "validation_failed"],
    ["malformed JSON", { body: '{"email": ', headers: json }, 400, "malformed_json"],
    ["a form body", { body: "email=x%40example.com", headers: { "content-type": "application/x-www-form-urlencoded" } }, 415, "unsupported_media_type"],
    ["a body over 1 MB", { body: JSON.stringify({ padding: "x".repeat(1024 * 1024) }), headers: json }, 413, "payload_too_large"],
  ])("register with %s: %i %s, and nothing stored", async (_, request, status, code) => {
    const [before] = await handlerQuery<{ n: number }>(sql`select count(*)::int as n from "auth"."users"`);
    const res = await invoke({ method: "POST", path: "/auth/register", ...request });
    expect(res.statusCode, JSON.stringify(res.json)).toBe(status);
    expect(res.json.error.code).toBe(code);
    expect(Object.keys(res.json.error).every((k) => ["code", "message", "details"].includes(k))).toBe(true);
    expect(res.headers["x-request-id"]).toBeTruthy();
    const [after] = await handlerQuery<{ n: number }>(sql`select count(*)::int as n from "auth"."users"`);
    expect(after?.n).toBe(before?.n);
  });

  test("a duplicate registration: 409 conflict", async () => {
    const res = await invoke({
      method: "POST",
      path: "/auth/register",
      body: JSON.stringify({ ...registration, email: registration.email.toUpperCase() }),
      headers: json,
    });
    expect(res.statusCode).toBe(409);
    expect(res.json.error.code).toBe("conflict");
  });

  test("an unknown path: 404 JSON; a wrong method: 405 JSON with Allow", async () => {
    const missing = await invoke({ method: "GET", path: "/auth/unknown" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json.error.code).toBe("not_found");
    const wrong = await invoke({ method: "GET", path: "/auth/register" });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe("POST");
  });

  test("the JWKS and health answer through the handler", async () => {
    const jwks = await invoke({ method: "GET", path: "/auth/.well-known/jwks.json" });
    expect(jwks.statusCode).toBe(200);
    expect(jwks.json.keys[0]).not.toHaveProperty("d");
    const health = await invoke({ method: "GET", path: "/auth/health" });
    expect(health.statusCode).toBe(200);
    expect(health.json).toMatchObject({ service: "auth", status: "ok", database: { status: "ok" } });
  });
});
