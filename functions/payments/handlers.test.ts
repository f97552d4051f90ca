import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { configureLog, type Database, type EventEnvelope, UnknownEventError, uuidv7 } from "@enclave/core";
import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { createServiceTokenVerifier } from "@enclave/core/http/service-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { type ApiGatewayEventOptions, apiGatewayEvent, eventBridgeEvent, eventBridgeSample } from "@enclave/core/testing/aws-events";
import { type FunctionDatabase, functionDatabase, jsonOf, overrideEnv, putEventsEndpoint } from "@enclave/core/testing/lambda";
import { paymentsTable, paymentTransactionsTable } from "@enclave/payments/payments.sql";
import { asc, eq, sql } from "drizzle-orm";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";

/**
 * The payments Lambdas as AWS invokes them: configuration from the environment, the API Gateway
 * HTTP API sample (base64 body, comma-joined headers, stray query parameters) for the API, the
 * recorded EventBridge sample (hyphenated `detail-type`, `detail` an object, `replay-name` on
 * replays) carrying a real payment.created for the process consumer, scheduled invocations for
 * the crons, events sent with PutEvents to a local endpoint that records them, and auth's user
 * lookup served over real HTTP by a stand-in that checks the service token like auth does.
 */
const sample = eventBridgeSample();

type ApiResult = { statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: boolean };
let api: (event: unknown, context: unknown) => Promise<ApiResult>;
let consume: (event: unknown) => Promise<void>;
let cron: Record<"due" | "outbox-sweeper" | "idempotency-expiry", () => Promise<unknown>>;
let database: Database;
let functionDb: FunctionDatabase | undefined;
let restoreEnv: (() => void) | undefined;
const eventBridge = putEventsEndpoint();
const putEvents = eventBridge.entries;
let auth: Server;
const authCalls: { url: string; service: string | null }[] = [];
const authUsers = new Map<string, { id: string; email: string; name: string; role: "CUSTOMER" }>();
let authDown = false;
let sign: (userId: string) => Promise<string>;
const alice = { id: uuidv7(), email: "alice@example.com" };
const bob = { id: uuidv7(), email: "bob@example.com" };

const listen = async (server: Server) => {
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  const eventBridgeUrl = await eventBridge.listen();

  // The stage's service key pair: payments gets the private half, auth the public one.
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const serviceJwk = { ...(await exportJWK(privateKey)), kid: "stage-service-key" };
  const { d: _private, ...servicePublic } = serviceJwk;
  const serviceTokens = createServiceTokenVerifier({ audience: "auth", jwks: { keys: [{ ...servicePublic, alg: "ES256" }] } });
  auth = createServer(async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const principal = token ? await serviceTokens.verify(token).catch(() => undefined) : undefined;
    authCalls.push({ url: req.url ?? "", service: principal?.kind === "service" ? principal.service : null });
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (authDown) return reply(503, { error: { code: "unavailable", message: "down" } });
    if (!principal) return reply(401, { error: { code: "unauthorized", message: "no" } });
    const email = new URL(req.url ?? "/", "http://auth").searchParams.get("email")?.toLowerCase() ?? "";
    const user = authUsers.get(email);
    if (!user) return reply(404, { error: { code: "not_found", message: "No user has this email." } });
    reply(200, { user: { ...user, emailVerified: false, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() } });
  });
  const authUrl = await listen(auth);
  for (const user of [alice, bob]) authUsers.set(user.email, { ...user, name: user.email, role: "CUSTOMER" });

  functionDb = await functionDatabase("payments");
  const key = await importSigningKey(generatePrivateJwk());
  const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  sign = (userId) => signAccessToken(key, tokens, { id: userId, role: "CUSTOMER" });
  restoreEnv = overrideEnv({
    STAGE: "test",
    LOG_LEVEL: "error",
    PAYMENTS_DATABASE_URL: functionDb.url,
    AUTH_PUBLIC_JWKS: JSON.stringify({ keys: [key.publicJwk] }),
    AUTH_URL: authUrl,
    AUTH_TIMEOUT_MS: "1000",
    SERVICE_SIGNING_KEY: JSON.stringify(serviceJwk),
    EVENT_BUS_NAME: "enclave-test-bus",
    EVENT_BUS_ENDPOINT: eventBridgeUrl,
    AWS_REGION: "us-east-1",
  });
  // The modules read their configuration when they load: import them only now.
  api = (await import("./api")).handler as unknown as typeof api;
  consume = (await import("./jobs")).jobs.process as unknown as typeof consume;
  cron = {
    due: (await import("./jobs")).jobs.due as () => Promise<unknown>,
    "outbox-sweeper": (await import("./jobs")).jobs["outbox-sweeper"] as () => Promise<unknown>,
    "idempotency-expiry": (await import("./jobs")).jobs["idempotency-expiry"] as () => Promise<unknown>,
  };
  database = await (await import("@enclave/payments/deployed")).paymentsContext.database();
});

afterAll(async () => {
  await database?.close();
  await functionDb?.dispose();
  await eventBridge.close();
  await new Promise((done) => auth?.close(done));
  restoreEnv?.();
  configureLog({ level: "error" });
});

beforeEach(() => {
  putEvents.length = 0;
  authCalls.length = 0;
  authDown = false;
});

async function invoke(method: string, path: string, options: Omit<ApiGatewayEventOptions, "method" | "path"> = {}) {
  const headers = { "content-type": "application/json", "x-forwarded-for": "203.0.113.7,10.0.0.1", ...options.headers };
  const result = await api(apiGatewayEvent({ method, path, ...options, headers }), { awsRequestId: "lambda-1", getRemainingTimeInMillis: () => 10_000 });
  return { status: result.statusCode, headers: result.headers, body: jsonOf(result) };
}

/** The EventBridge sample carrying `detail` as payments publishes it. */
const paymentCreated = (detail: unknown, options: { replay?: boolean } = {}) =>
  eventBridgeEvent(detail, { source: "enclave.payments", detailType: "payment.created", ...options });

const history = async (id: string) =>
  (await database.db.select().from(paymentTransactionsTable).where(eq(paymentTransactionsTable.paymentId, id)).orderBy(asc(paymentTransactionsTable.seq))).map(
    (row) => row.status,
  );
let keys = 0;
const pay = async (body: Record<string, unknown>, key = `lambda-${++keys}`) =>
  invoke("POST", "/payments", { body: JSON.stringify(body), token: await sign(alice.id), headers: { "idempotency-key": key, "x-request-id": `apigw-${key}` } });

describe("functions/payments/api", () => {
  test("creates a payment, looking the recipient up over HTTP with a service token, and sends payment.created", async () => {
    const res = await pay({ recipientEmail: "Bob@Example.com", amount: "25.5", description: "from the gateway" });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.payment).toMatchObject({ senderId: alice.id, recipientId: bob.id, amount: "25.50", status: "pending" });
    expect(authCalls).toEqual([{ url: "/auth/users?email=Bob%40Example.com", service: "payments" }]);
    expect(putEvents).toHaveLength(1);
    expect(putEvents[0]).toMatchObject({ Source: "enclave.payments", DetailType: "payment.created", EventBusName: "enclave-test-bus" });
    expect(JSON.parse(putEvents[0]!.Detail)).toMatchObject({ type: "payment.created", data: { paymentId: res.body.payment.id, amount: "25.50" } });
  });

  test("replays the first result for the same Idempotency-Key, 409 for a different body", async () => {
    const first = await pay({ recipientEmail: bob.email, amount: "3.00" }, "lambda-replay");
    const again = await pay({ recipientEmail: bob.email, amount: "3.00" }, "lambda-replay");
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect((await pay({ recipientEmail: bob.email, amount: "4.00" }, "lambda-replay")).status).toBe(409);
  });

  test("503 and nothing written when auth is down; 404 for an unknown recipient; 400 for bad input", async () => {
    const before = (await database.db.select({ n: sql<number>`count(*)::int` }).from(paymentsTable))[0]?.n;
    authDown = true;
    const down = await pay({ recipientEmail: "carol@example.com", amount: "1.00" });
    expect(down.status).toBe(503);
    expect(authCalls).toHaveLength(2);
    authDown = false;
    expect((await pay({ recipientEmail: "carol@example.com", amount: "1.00" })).status).toBe(404);
    const bad = await pay({ recipientEmail: bob.email, amount: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    const noKey = await invoke("POST", "/payments", { body: JSON.stringify({ recipientEmail: bob.email, amount: "1.00" }), token: await sign(alice.id) });
    expect(noKey.status).toBe(400);
    expect((await database.db.select({ n: sql<number>`count(*)::int` }).from(paymentsTable))[0]?.n).toBe(before);
    expect(putEvents).toHaveLength(0);
  });

  test("lists with the gateway's extra query parameters, and reads one payment", async () => {
    const created = await pay({ recipientEmail: bob.email, amount: "8.00" });
    const list = await invoke("GET", "/payments", { token: await sign(alice.id), query: "parameter1=value1&parameter1=value2&role=sender&limit=2" });
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.items[0].id).toBe(created.body.payment.id);
    expect(list.body.items).toHaveLength(2);
    expect(typeof list.body.nextCursor).toBe("string");
    const one = await invoke("GET", `/payments/${created.body.payment.id}`, { token: await sign(bob.id) });
    expect(one.body.payment.id).toBe(created.body.payment.id);
    expect((await invoke("GET", `/payments/${created.body.payment.id}`, { token: await sign(uuidv7()) })).status).toBe(404);
  });
});

describe("functions/payments/process", () => {
  test("the sample's shape with a real payment.created completes the payment and sends payment.completed", async () => {
    const created = await pay({ recipientEmail: bob.email, amount: "42.00" });
    const detail = JSON.parse(putEvents[0]!.Detail) as EventEnvelope;
    putEvents.length = 0;
    await consume(paymentCreated(detail));
    expect(await history(created.body.payment.id)).toEqual(["pending", "processing", "completed"]);
    expect(putEvents.map((e) => [e.Source, e.DetailType])).toEqual([["enclave.payments", "payment.completed"]]);
    expect(JSON.parse(putEvents[0]!.Detail).metadata.correlationId).toBe(detail.metadata.correlationId);
  });

  test("a replay (replay-name, new EventBridge id, same detail.id) and a redelivery change nothing", async () => {
    const created = await pay({ recipientEmail: bob.email, amount: "10000.01" });
    const detail = JSON.parse(putEvents[0]!.Detail) as EventEnvelope;
    await consume(paymentCreated(detail));
    putEvents.length = 0;
    await consume(paymentCreated(detail, { replay: true }));
    await consume(paymentCreated(detail));
    expect(await history(created.body.payment.id)).toEqual(["pending", "processing", "failed"]);
    expect(putEvents).toHaveLength(0);
    const [row] = await database.db.select().from(paymentsTable).where(eq(paymentsTable.id, created.body.payment.id));
    expect(row).toMatchObject({ status: "failed", failureReason: "limit_exceeded" });
  });

  test("the raw sample (an EC2 notification) and envelopes it cannot apply throw so EventBridge retries and dead-letters", async () => {
    await expect(consume(sample)).rejects.toBeInstanceOf(UnknownEventError);
    await expect(consume(paymentCreated({ id: uuidv7(), type: "payment.created", version: 1 }))).rejects.toBeInstanceOf(UnknownEventError);
    await expect(consume(paymentCreated(undefined))).rejects.toBeInstanceOf(UnknownEventError);
  });
});

describe("functions/payments crons", () => {
  test("due processes a scheduled payment whose time has come", async () => {
    const created = await pay({ recipientEmail: bob.email, amount: "5.00", type: "scheduled", scheduledFor: new Date(Date.now() + 3_600_000).toISOString() });
    const id = created.body.payment.id;
    await consume(paymentCreated(JSON.parse(putEvents[0]!.Detail)));
    expect(await history(id)).toEqual(["pending"]);
    // Its time comes (the row is moved, the clock cannot be).
    await database.db.execute(
      sql`update payments.payments set scheduled_for = now() - interval '1 second', due_at = now() - interval '1 second' where id = ${id}`,
    );
    putEvents.length = 0;
    expect(await cron.due()).toMatchObject({ claimed: 1, completed: 1 });
    expect(await history(id)).toEqual(["pending", "processing", "completed"]);
    expect(putEvents.map((e) => e.DetailType)).toEqual(["payment.completed"]);
  });

  test("the outbox sweeper and the idempotency expiry run", async () => {
    expect(await cron["outbox-sweeper"]()).toEqual({ published: 0, failed: 0 });
    expect(await cron["idempotency-expiry"]()).toEqual({ deleted: 0 });
  });
});
