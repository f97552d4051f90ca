import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSigningJwk, importSigningKey, signAccessToken } from "@enclave/auth/tokens";
import { configureLog, createEvent, type Database, type EventEnvelope, openDatabase, UnknownEventError, uuidv7 } from "@enclave/core";
import { migrate } from "@enclave/core/db/migrate";
import { createTestDatabase, migrationsDir, type TestDatabase, testServerUrl } from "@enclave/core/testing";
import { profileInbox, profileOutbox, userProfilesTable } from "@enclave/profile/profile.sql";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";

/**
 * The profile Lambdas as AWS invokes them: configuration from the environment, the recorded
 * EventBridge sample (hyphenated `detail-type`, `detail` an object, `replay-name` on replays)
 * filled with a real user.registered envelope, the API Gateway HTTP API sample for the API, and
 * profile.created sent with PutEvents to a local endpoint that records it.
 */
const fixtures = join(import.meta.dirname, "../../fixtures");
const sample = JSON.parse(await readFile(join(fixtures, "eventbridge-event.sample.json"), "utf8")) as Record<string, unknown>;
const apiGatewayTemplate = await readFile(join(fixtures, "apigw-v2-http-api.template.json"), "utf8");

/** The EventBridge sample carrying `detail` as auth publishes it. */
function eventBridgeEvent(detail: unknown, options: { replay?: boolean; type?: string } = {}) {
  const { "replay-name": _replay, ...base } = sample;
  return {
    ...base,
    id: uuidv7(), // EventBridge's own id differs on every delivery; consumers dedupe on detail.id
    source: "enclave.auth",
    "detail-type": options.type ?? "user.registered",
    account: "123456789012",
    region: "us-east-1",
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    resources: [],
    detail,
    ...(options.replay ? { "replay-name": "enclave-test-archive-replay" } : {}),
  };
}

const registered = (userId = uuidv7()) =>
  createEvent(
    "user.registered",
    { userId, email: `${userId}@example.com`, name: "Lambda User", role: "CUSTOMER" },
    { correlationId: "apigw-req-9", actor: userId },
  );

type ApiResult = { statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: boolean };
let consume: (event: unknown) => Promise<void>;
let api: (event: unknown, context: unknown) => Promise<ApiResult>;
let database: Database;
let testDatabase: TestDatabase | undefined;
let dataDir: string | undefined;
let eventBridge: Server;
const putEvents: { Source: string; DetailType: string; Detail: string; EventBusName: string }[] = [];
const savedEnv = { ...process.env };
let sign: (userId: string, role: "ADMIN" | "CUSTOMER") => Promise<string>;

beforeAll(async () => {
  eventBridge = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const body = JSON.parse(text);
      putEvents.push(...body.Entries);
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify({ FailedEntryCount: 0, Entries: body.Entries.map((_: unknown, i: number) => ({ EventId: `event-${i}` })) }));
    });
  });
  await new Promise<void>((done) => eventBridge.listen(0, "127.0.0.1", done));

  let url: string;
  if (testServerUrl) {
    testDatabase = await createTestDatabase(["profile"]);
    url = testDatabase.url;
  } else {
    // In-memory PGlite is per instance: migrate a data directory, close it, let the function open it.
    dataDir = await mkdtemp(join(tmpdir(), "enclave-profile-lambda-"));
    url = `pglite://${dataDir}`;
    const migrating = await openDatabase(url);
    await migrate(migrating.db, "profile", migrationsDir("profile"));
    await migrating.close();
  }
  const key = await importSigningKey(await generateSigningJwk());
  const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  sign = (userId, role) => signAccessToken(key, tokens, { id: userId, role });
  Object.assign(process.env, {
    APP_NAME: "enclave",
    STAGE: "test",
    LOG_LEVEL: "error",
    PROFILE_DATABASE_URL: url,
    AUTH_PUBLIC_JWKS: JSON.stringify({ keys: [key.publicJwk] }),
    EVENT_BUS_NAME: "enclave-test-bus",
    EVENT_BUS_ENDPOINT: `http://127.0.0.1:${(eventBridge.address() as AddressInfo).port}`,
    AWS_REGION: "us-east-1",
  });
  // The modules read their configuration when they load: import them only now.
  consume = (await import("./on-user-registered")).handler as unknown as typeof consume;
  api = (await import("./api")).handler as unknown as typeof api;
  database = await (await import("@enclave/profile/lambda")).profileContext.database();
});

afterAll(async () => {
  await database?.close();
  await testDatabase?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  await new Promise((done) => eventBridge?.close(done));
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  configureLog({ level: "error" });
});

beforeEach(() => {
  putEvents.length = 0;
});

const profilesOf = (userId: string) => database.db.select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
const inboxOf = (eventId: string) => database.db.select().from(profileInbox).where(eq(profileInbox.eventId, eventId));

describe("functions/profile/on-user-registered", () => {
  test("the sample's shape with a real user.registered creates the profile and sends profile.created", async () => {
    const event = registered();
    const delivered = eventBridgeEvent(event);
    expect(Object.keys(delivered)).toEqual(
      expect.arrayContaining(["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]),
    );
    await consume(delivered);
    const [profile, ...more] = await profilesOf(event.data.userId);
    expect(more).toHaveLength(0);
    expect(profile).toMatchObject({ userId: event.data.userId, preferences: {} });
    expect(await inboxOf(event.id)).toEqual([{ subscriber: "on-user-registered", eventId: event.id, processedAt: expect.any(Date) }]);
    expect(putEvents).toHaveLength(1);
    expect(putEvents[0]).toMatchObject({ Source: "enclave.profile", DetailType: "profile.created", EventBusName: "enclave-test-bus" });
    expect(JSON.parse(putEvents[0]!.Detail)).toMatchObject({
      type: "profile.created",
      version: 1,
      data: { profileId: profile?.id, userId: event.data.userId },
      metadata: event.metadata,
    });
    const outbox = await database.db.select().from(profileOutbox).where(eq(profileOutbox.type, "profile.created"));
    expect(outbox.find((row) => row.detail.data.userId === event.data.userId)?.publishedAt).not.toBeNull();
  });

  test("a replay (replay-name, new EventBridge id, same detail.id) and a plain redelivery change nothing", async () => {
    const event = registered();
    await consume(eventBridgeEvent(event));
    putEvents.length = 0;
    const replay = eventBridgeEvent(event, { replay: true });
    expect(replay["replay-name"]).toBe("enclave-test-archive-replay");
    await consume(replay);
    await consume(eventBridgeEvent(event));
    expect(await profilesOf(event.data.userId)).toHaveLength(1);
    expect(await inboxOf(event.id)).toHaveLength(1);
    expect(putEvents).toHaveLength(0);
  });

  test("the raw sample (an EC2 notification) and envelopes it cannot apply throw so EventBridge retries and dead-letters", async () => {
    await expect(consume(sample)).rejects.toBeInstanceOf(UnknownEventError);
    const event = registered();
    const unknownVersion = { ...event, version: 2 } as EventEnvelope;
    const bad: unknown[] = [
      unknownVersion,
      { ...event, id: "not-a-uuid" },
      { ...event, data: { ...event.data, userId: 42 } },
      JSON.stringify(event), // detail as a string: not what EventBridge delivers to a target
      undefined,
    ];
    for (const detail of bad) await expect(consume(eventBridgeEvent(detail))).rejects.toBeInstanceOf(UnknownEventError);
    // An unknown version stays unknown on a replay too.
    await expect(consume(eventBridgeEvent(unknownVersion, { replay: true }))).rejects.toThrow(/unknown version 2 of user.registered/);
    expect(await profilesOf(event.data.userId)).toHaveLength(0);
    expect(await inboxOf(event.id)).toHaveLength(0);
    expect(putEvents).toHaveLength(0);
  });
});

/** The SAM API Gateway sample with its placeholders filled in. */
function apiGatewayEvent(method: string, path: string, options: { body?: string; token?: string } = {}) {
  const event = JSON.parse(
    apiGatewayTemplate
      .replaceAll("{{{path}}}", path.replace(/^\//, ""))
      .replaceAll("{{{method}}}", method)
      .replaceAll("{{{stage}}}", "$default")
      .replaceAll("{{{account_id}}}", "123456789012")
      .replaceAll("{{{dns_suffix}}}", "amazonaws.com")
      .replaceAll("{{{body}}}", ""),
  );
  event.body = options.body === undefined ? undefined : Buffer.from(options.body, "utf8").toString("base64");
  event.isBase64Encoded = options.body !== undefined;
  event.headers = {
    ...event.headers,
    "content-type": "application/json",
    "x-request-id": "apigw-profile-1",
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  };
  return event;
}

async function invoke(method: string, path: string, options: { body?: string; token?: string } = {}) {
  const result = await api(apiGatewayEvent(method, path, options), { awsRequestId: "lambda-1", getRemainingTimeInMillis: () => 10_000 });
  const text = result.isBase64Encoded ? Buffer.from(result.body, "base64").toString("utf8") : result.body;
  return { status: result.statusCode, headers: result.headers, body: text ? JSON.parse(text) : undefined };
}

describe("functions/profile/api", () => {
  test("GET and PATCH /profiles/me, then GET /profiles/{userId} as ADMIN and as someone else", async () => {
    const userId = uuidv7();
    const token = await sign(userId, "CUSTOMER");
    const me = await invoke("GET", "/profiles/me", { token });
    expect(me.status, JSON.stringify(me.body)).toBe(200);
    expect(me.headers["x-request-id"]).toBe("apigw-profile-1");
    expect(me.body.profile).toMatchObject({ userId, bio: null });
    expect(putEvents.map((e) => e.DetailType)).toEqual(["profile.created"]);
    const patched = await invoke("PATCH", "/profiles/me", { token, body: JSON.stringify({ bio: "Zoë 🚀", phone: "+4930123456" }) });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.profile).toMatchObject({ id: me.body.profile.id, bio: "Zoë 🚀", phone: "+4930123456" });
    expect(putEvents.map((e) => e.DetailType)).toEqual(["profile.created", "profile.updated"]);
    const byAdmin = await invoke("GET", `/profiles/${userId}`, { token: await sign(uuidv7(), "ADMIN") });
    expect(byAdmin.body.profile).toEqual(patched.body.profile);
    const byOther = await invoke("GET", `/profiles/${userId}`, { token: await sign(uuidv7(), "CUSTOMER") });
    expect([byOther.status, byOther.body.error.code]).toEqual([403, "forbidden"]);
  });

  test("bad input through API Gateway: 400 in the error shape", async () => {
    const token = await sign(uuidv7(), "CUSTOMER");
    const bad = await invoke("PATCH", "/profiles/me", { token, body: JSON.stringify({ avatarUrl: "http://example.com/a.png", extra: 1 }) });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
    expect(bad.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(["", "avatarUrl"]);
    const health = await invoke("GET", "/profiles/health");
    expect([health.status, health.body.service, health.body.database.status]).toEqual([200, "profile", "ok"]);
  });
});
