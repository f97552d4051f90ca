import { configureLog, createEvent, type Database, type EventEnvelope, UnknownEventError, uuidv7 } from "@enclave/core";
import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { apiGatewayEvent, eventBridgeEvent, eventBridgeSample } from "@enclave/core/testing/aws-events";
import { type FunctionDatabase, functionDatabase, jsonOf, overrideEnv, putEventsEndpoint } from "@enclave/core/testing/lambda";
import { profileInbox, profileOutbox, userProfilesTable } from "@enclave/profile/profile.sql";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";

/**
 * The profile Lambdas as AWS invokes them: configuration from the environment, the recorded
 * EventBridge sample (hyphenated `detail-type`, `detail` an object, `replay-name` on replays)
 * filled with a real user.registered envelope, the API Gateway HTTP API sample for the API, and
 * profile.created sent with PutEvents to a local endpoint that records it.
 */
const sample = eventBridgeSample();

/** The EventBridge sample carrying `detail` as auth publishes it. */
const fromAuth = (detail: unknown, options: { replay?: boolean } = {}) =>
  eventBridgeEvent(detail, { source: "enclave.auth", detailType: "user.registered", ...options });

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
let functionDb: FunctionDatabase | undefined;
let restoreEnv: (() => void) | undefined;
const eventBridge = putEventsEndpoint();
const putEvents = eventBridge.entries;
let sign: (userId: string, role: "ADMIN" | "CUSTOMER") => Promise<string>;

beforeAll(async () => {
  const eventBusEndpoint = await eventBridge.listen();
  functionDb = await functionDatabase("profile");
  const key = await importSigningKey(generatePrivateJwk());
  const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  sign = (userId, role) => signAccessToken(key, tokens, { id: userId, role });
  restoreEnv = overrideEnv({
    STAGE: "test",
    LOG_LEVEL: "error",
    PROFILE_DATABASE_URL: functionDb.url,
    AUTH_PUBLIC_JWKS: JSON.stringify({ keys: [key.publicJwk] }),
    EVENT_BUS_NAME: "enclave-test-bus",
    EVENT_BUS_ENDPOINT: eventBusEndpoint,
    AWS_REGION: "us-east-1",
  });
  // The modules read their configuration when they load: import them only now.
  consume = (await import("./jobs")).jobs["on-user-registered"] as unknown as typeof consume;
  api = (await import("./api")).handler as unknown as typeof api;
  database = await (await import("@enclave/profile/deployed")).profileContext.database();
});

afterAll(async () => {
  await database?.close();
  await functionDb?.dispose();
  await eventBridge.close();
  restoreEnv?.();
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
    const delivered = fromAuth(event);
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
    await consume(fromAuth(event));
    putEvents.length = 0;
    const replay = fromAuth(event, { replay: true });
    expect(replay["replay-name"]).toBe("enclave-test-archive-replay");
    await consume(replay);
    await consume(fromAuth(event));
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
    for (const detail of bad) await expect(consume(fromAuth(detail))).rejects.toBeInstanceOf(UnknownEventError);
    // An unknown version stays unknown on a replay too.
    await expect(consume(fromAuth(unknownVersion, { replay: true }))).rejects.toThrow(/unknown version 2 of user.registered/);
    expect(await profilesOf(event.data.userId)).toHaveLength(0);
    expect(await inboxOf(event.id)).toHaveLength(0);
    expect(putEvents).toHaveLength(0);
  });
});

async function invoke(method: string, path: string, options: { body?: string; token?: string } = {}) {
  const event = apiGatewayEvent({ method, path, ...options, headers: { "content-type": "application/json", "x-request-id": "apigw-profile-1" } });
  const result = await api(event, { awsRequestId: "lambda-1", getRemainingTimeInMillis: () => 10_000 });
  return { status: result.statusCode, headers: result.headers, body: jsonOf(result) };
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
