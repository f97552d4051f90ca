import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { auditLogsTable, systemConfigTable } from "@enclave/admin/admin.sql";
import { createEvent, type Database, uuidv7 } from "@enclave/core";
import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { apiGatewayEvent, eventBridgeEvent, eventBridgeSample } from "@enclave/core/testing/aws-events";
import { type FunctionDatabase, functionDatabase } from "@enclave/core/testing/lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";

/**
 * The Lambda entry points as AWS invokes them: configuration from the environment, an
 * EventBridge event (hyphenated `detail-type`, `detail` an object) for the audit subscriber, an
 * API Gateway HTTP API (payload 2.0) event for the API, both from the recorded samples.
 */
const eventBridge = mockClient(EventBridgeClient);
let functionDb: FunctionDatabase | undefined;
let database: Database;
let auditHandler: (event: unknown) => Promise<void>;
let apiHandler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string; headers?: Record<string, string> }>;
let adminToken: string;
let customerToken: string;
const adminId = "0190a0b0-0000-7000-8000-0000000000ad";

beforeAll(async () => {
  // A database the function opens itself from ADMIN_DATABASE_URL, as in the cloud.
  functionDb = await functionDatabase("admin");
  const key = await importSigningKey(generatePrivateJwk());
  const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  adminToken = await signAccessToken(key, tokens, { id: adminId, role: "ADMIN" });
  customerToken = await signAccessToken(key, tokens, { id: uuidv7(), role: "CUSTOMER" });
  vi.stubEnv("ADMIN_DATABASE_URL", functionDb.url);
  vi.stubEnv("AUTH_PUBLIC_JWKS", JSON.stringify({ keys: [key.publicJwk] }));
  vi.stubEnv("EVENT_BUS_NAME", "enclave-test");
  vi.stubEnv("AWS_REGION", "us-east-1");
  vi.stubEnv("LOG_LEVEL", "error");
  auditHandler = (await import("./jobs")).jobs.audit as typeof auditHandler;
  apiHandler = (await import("./api")).handler as unknown as typeof apiHandler;
  database = await (await import("@enclave/admin/deployed")).adminContext.database();
});

afterAll(async () => {
  await database?.close();
  await functionDb?.dispose();
  vi.unstubAllEnvs();
  eventBridge.restore();
});

beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).callsFake((input) => ({ FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: uuidv7() })) }));
});

describe("functions/admin/audit.ts (EventBridge target)", () => {
  test("records the envelope in `detail` once, however often EventBridge delivers it", async () => {
    const envelope = createEvent("user.role_changed", { userId: uuidv7(), from: "CUSTOMER", to: "ADMIN" }, { correlationId: "req-9", actor: adminId });
    const event = eventBridgeEvent(envelope, { source: "enclave.auth", detailType: envelope.type });
    await auditHandler(event);
    await auditHandler({ ...event, id: uuidv7() }); // a redelivery is a new EventBridge event with the same detail
    await Promise.all([auditHandler(event), auditHandler(event)]);
    const rows = (await database.db.select().from(auditLogsTable)).filter((r) => r.id === envelope.id);
    expect(rows).toEqual([
      expect.objectContaining({ action: "user.role_changed", userId: envelope.data.userId, actorId: adminId, resourceType: "user", correlationId: "req-9" }),
    ]);
  });

  test("a replayed event (replay-name present) is still recorded once", async () => {
    const envelope = createEvent("config.changed", { key: "x.y" }, { correlationId: "c", actor: adminId });
    const event = eventBridgeEvent(envelope, { source: "enclave.admin", detailType: envelope.type, replay: true });
    await auditHandler(event);
    await auditHandler(event);
    expect((await database.db.select().from(auditLogsTable)).filter((r) => r.id === envelope.id)).toHaveLength(1);
  });

  test("throws on a detail that is not an envelope, so the target retries and dead-letters it", async () => {
    const sample = eventBridgeSample(); // an EC2 state-change notification: not ours
    const before = (await database.db.select().from(auditLogsTable)).length;
    await expect(auditHandler(sample)).rejects.toThrow(/not an event envelope/);
    expect(await database.db.select().from(auditLogsTable)).toHaveLength(before);
  });
});

/** The API Gateway sample with its placeholders filled. */
function apiEvent(method: string, path: string, query: string, body: unknown, headers: Record<string, string>) {
  return apiGatewayEvent({ method, path, query, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

const lambdaContext = { awsRequestId: "aws-req-1", functionName: "admin-api", getRemainingTimeInMillis: () => 10_000 };

describe("functions/admin/api.ts (API Gateway HTTP API)", () => {
  test("PUT config: audited with API Gateway's source ip and the user agent, published to EventBridge", async () => {
    const event = apiEvent(
      "PUT",
      "/admin/config/feature.lambda",
      "",
      { value: { on: true }, description: "from Lambda" },
      {
        authorization: `Bearer ${adminToken}`,
        "content-type": "application/json",
        "user-agent": "admin-console/3.0",
        "x-forwarded-for": "10.9.9.9",
      },
    );
    const res = await apiHandler(event, lambdaContext);
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ key: "feature.lambda", value: { on: true }, description: "from Lambda", updatedBy: adminId });
    const [stored] = (await database.db.select().from(systemConfigTable)).filter((r) => r.key === "feature.lambda");
    expect(stored).toMatchObject({ value: { on: true }, updatedBy: adminId });
    const [audit] = (await database.db.select().from(auditLogsTable)).filter((r) => r.resourceId === "feature.lambda");
    expect(audit).toMatchObject({ action: "config.changed", userId: adminId, ipAddress: "192.168.0.1/32", userAgent: "admin-console/3.0" });
    const sent = eventBridge.commandCalls(PutEventsCommand).flatMap((call) => call.args[0].input.Entries ?? []);
    expect(sent).toEqual([expect.objectContaining({ Source: "enclave.admin", DetailType: "config.changed", EventBusName: "enclave-test" })]);
    expect(JSON.parse(sent[0]?.Detail ?? "{}")).toMatchObject({ id: audit?.id, data: { key: "feature.lambda" } });
  });

  test("GET audit-logs with query parameters", async () => {
    const res = await apiHandler(
      apiEvent("GET", "/admin/audit-logs", "action=config.changed&limit=1", undefined, { authorization: `Bearer ${adminToken}` }),
      lambdaContext,
    );
    expect(res.statusCode, res.body).toBe(200);
    const page = JSON.parse(res.body);
    expect(page.items).toHaveLength(1);
    expect(page.items[0].action).toBe("config.changed");
  });

  test("403 for a customer, 401 without a token, 400 for a bad filter", async () => {
    const forbidden = await apiHandler(apiEvent("GET", "/admin/config", "", undefined, { authorization: `Bearer ${customerToken}` }), lambdaContext);
    expect(forbidden.statusCode).toBe(403);
    const anonymous = await apiHandler(apiEvent("DELETE", "/admin/config/feature.lambda", "", undefined, {}), lambdaContext);
    expect(anonymous.statusCode).toBe(401);
    const bad = await apiHandler(
      apiEvent("GET", "/admin/audit-logs", "from=2026-02-30T00:00:00Z", undefined, { authorization: `Bearer ${adminToken}` }),
      lambdaContext,
    );
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe("validation_failed");
  });
});
