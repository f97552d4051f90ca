import { uuidv7 } from "@enclave/core";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { profileJobs } from "./jobs";
import { profileOutbox, userProfilesTable } from "./profile.sql";
import { call, createProfileHarness, type ProfileHarness } from "./testing";

let h: ProfileHarness;
beforeAll(async () => {
  h = await createProfileHarness();
});
afterAll(() => h?.dispose());
beforeEach(() => {
  h.bus.entries.length = 0;
  h.bus.down = false;
});

const db = () => h.database.db;
const rowsFor = (userId: string) => db().select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
const outboxFor = async (userId: string) =>
  (await db().select().from(profileOutbox).orderBy(profileOutbox.createdAt, profileOutbox.id)).filter((row) => row.detail.data.userId === userId);

/** Runs `run` and returns its result with the database round trips it took. */
async function counted<T>(run: () => Promise<T>): Promise<[T, number]> {
  const before = h.database.stats.queries;
  const result = await run();
  return [result, h.database.stats.queries - before];
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("GET /profiles/me", () => {
  test("creates the default profile on first access (2 round trips), then reads it (1 round trip)", async () => {
    const { userId, token } = await h.token();
    const [first, firstTrips] = await counted(() => call(h.app, "GET", "/profiles/me", undefined, token));
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.profile).toEqual({
      id: expect.stringMatching(uuidPattern),
      userId,
      avatarUrl: null,
      phone: null,
      address: null,
      bio: null,
      preferences: {},
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(firstTrips).toBe(2); // insert + outbox in one statement, then the relay marks it sent
    expect(h.bus.entries.map((e) => [e.source, e.detailType, e.detail.data])).toEqual([
      ["enclave.profile", "profile.created", { profileId: first.body.profile.id, userId }],
    ]);
    expect(h.bus.entries[0]?.detail.metadata).toEqual({ correlationId: first.headers.get("x-request-id"), actor: userId });

    const [second, secondTrips] = await counted(() => call(h.app, "GET", "/profiles/me", undefined, token));
    expect(second.status).toBe(200);
    expect(second.body.profile).toEqual(first.body.profile);
    expect(secondTrips).toBe(1);
    expect(h.bus.entries).toHaveLength(1);
    expect(await rowsFor(userId)).toHaveLength(1);
    const outbox = await outboxFor(userId);
    expect(outbox.map((row) => [row.type, row.publishedAt !== null])).toEqual([["profile.created", true]]);
  });

  test("concurrent first requests make one profile and one profile.created", async () => {
    const { userId, token } = await h.token();
    const responses = await Promise.all(Array.from({ length: 8 }, () => call(h.app, "GET", "/profiles/me", undefined, token)));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(new Set(responses.map((r) => r.body.profile.id)).size).toBe(1);
    expect(await rowsFor(userId)).toHaveLength(1);
    expect((await outboxFor(userId)).map((row) => row.type)).toEqual(["profile.created"]);
    expect(h.bus.entries.filter((e) => e.detail.data.userId === userId)).toHaveLength(1);
  });

  test("a request that loses the creation race reads the winner's row (at most 2 round trips)", async () => {
    const { userId, token } = await h.token();
    // Another request inserts the profile and holds its transaction open while ours starts.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedSignal = new Promise<void>((resolve) => (inserted = resolve));
    const winnerId = uuidv7();
    const winner = db().transaction(async (tx) => {
      await tx.insert(userProfilesTable).values({ id: winnerId, userId });
      inserted();
      await held;
    });
    await insertedSignal;
    const before = h.database.stats.queries;
    const loser = call(h.app, "GET", "/profiles/me", undefined, token);
    // Give the loser's statement time to reach the unique index and wait on it (server only;
    // PGlite runs one transaction at a time, so there the loser simply runs after the winner).
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await winner;
    const response = await loser;
    expect(response.status).toBe(200);
    expect(response.body.profile.id).toBe(winnerId);
    // On a server the winner's COMMIT goes through the same counter; PGlite commits natively.
    const loserTrips = h.database.stats.queries - before - (h.database.kind === "pglite" ? 0 : 1);
    // On a server the loser took the race path: its statement found nothing, then it read the row.
    expect(loserTrips).toBe(h.database.kind === "pglite" ? 1 : 2);
    expect(await rowsFor(userId)).toHaveLength(1);
    expect(await outboxFor(userId)).toHaveLength(0);
  });

  test("needs a valid access token", async () => {
    expect((await call(h.app, "GET", "/profiles/me")).body.error.code).toBe("unauthorized");
    const bad = await call(h.app, "GET", "/profiles/me", undefined, "not-a-token");
    expect([bad.status, bad.body.error.code]).toEqual([401, "unauthorized"]);
    const { token } = await h.token();
    const tampered = await call(h.app, "GET", "/profiles/me", undefined, `${token.slice(0, -4)}AAAA`);
    expect(tampered.status).toBe(401);
    const basic = await call(h.app, "GET", "/profiles/me", undefined, undefined, { authorization: `Basic ${token}` });
    expect(basic.status).toBe(401);
  });

  test("other methods answer 405 with Allow", async () => {
    const { token } = await h.token();
    const response = await call(h.app, "DELETE", "/profiles/me", undefined, token);
    expect(response.status).toBe(405);
    expect(response.body.error.code).toBe("method_not_allowed");
    expect(response.headers.get("allow")).toContain("PATCH");
  });
});

describe("PATCH /profiles/me", () => {
  const full = {
    avatarUrl: "https://cdn.example.com/avatars/ada.png",
    phone: "+14155550123",
    address: { line1: "Unter den Linden 1", city: "Berlin", postalCode: "10117", country: "DE" },
    bio: "Mathematician.\nWrites notes on engines.",
    preferences: { theme: "dark", notifications: { email: true, sms: false }, languages: ["en", "de"] },
  };

  test("updates every field in one statement plus the relay (2 round trips) and emits profile.updated", async () => {
    const { userId, token } = await h.token();
    const created = await call(h.app, "GET", "/profiles/me", undefined, token);
    h.bus.entries.length = 0;
    const [response, trips] = await counted(() => call(h.app, "PATCH", "/profiles/me", full, token));
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.profile).toMatchObject({ ...full, id: created.body.profile.id, userId, createdAt: created.body.profile.createdAt });
    expect(Date.parse(response.body.profile.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.body.profile.updatedAt));
    expect(trips).toBeLessThanOrEqual(3);
    expect(trips).toBe(2);
    expect(h.bus.entries.map((e) => [e.detailType, e.detail.data])).toEqual([["profile.updated", { profileId: created.body.profile.id, userId }]]);
    const outbox = await outboxFor(userId);
    expect(outbox.map((row) => [row.type, row.detail.data.profileId, row.publishedAt !== null])).toEqual([
      ["profile.created", created.body.profile.id, true],
      ["profile.updated", created.body.profile.id, true],
    ]);
    // What the relay published is exactly what the outbox holds (the sweeper would send the same).
    expect(h.bus.entries[0]?.detail).toEqual(outbox[1]?.detail);
    const reread = await call(h.app, "GET", "/profiles/me", undefined, token);
    expect(reread.body.profile).toEqual(response.body.profile);
  });

  test("changes only the fields sent; null clears a field", async () => {
    const { token } = await h.token();
    await call(h.app, "PATCH", "/profiles/me", full, token);
    const bio = await call(h.app, "PATCH", "/profiles/me", { bio: "Shorter." }, token);
    expect(bio.body.profile).toMatchObject({ ...full, bio: "Shorter." });
    const cleared = await call(h.app, "PATCH", "/profiles/me", { avatarUrl: null, phone: null, address: null, bio: null }, token);
    expect(cleared.status).toBe(200);
    expect(cleared.body.profile).toMatchObject({ avatarUrl: null, phone: null, address: null, bio: null, preferences: full.preferences });
    const prefs = await call(h.app, "PATCH", "/profiles/me", { preferences: { theme: "light" } }, token);
    expect(prefs.body.profile.preferences).toEqual({ theme: "light" }); // replaced, not merged
    const emptied = await call(h.app, "PATCH", "/profiles/me", { preferences: {} }, token);
    expect(emptied.body.profile.preferences).toEqual({});
  });

  test("before the profile exists it creates it: profile.created then profile.updated, both with the new id", async () => {
    const { userId, token } = await h.token();
    const [response, trips] = await counted(() => call(h.app, "PATCH", "/profiles/me", { bio: "First words." }, token));
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.profile).toMatchObject({ userId, bio: "First words.", preferences: {}, avatarUrl: null });
    expect(trips).toBe(2);
    const profileId = response.body.profile.id;
    expect(h.bus.entries.map((e) => [e.detailType, e.detail.data])).toEqual([
      ["profile.created", { profileId, userId }],
      ["profile.updated", { profileId, userId }],
    ]);
    expect(await rowsFor(userId)).toHaveLength(1);
  });

  test("concurrent PATCHes of a new user make one profile", async () => {
    const { userId, token } = await h.token();
    const responses = await Promise.all(
      ["+14155550101", "+14155550102", "+14155550103", "+14155550104"].map((phone) => call(h.app, "PATCH", "/profiles/me", { phone }, token)),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(responses.map((r) => r.body.profile.id)).size).toBe(1);
    expect(await rowsFor(userId)).toHaveLength(1);
    const types = (await outboxFor(userId)).map((row) => row.type);
    expect(types.filter((t) => t === "profile.created")).toHaveLength(1);
    expect(types.filter((t) => t === "profile.updated")).toHaveLength(4);
  });

  test("accepts the documented edge values", async () => {
    const { token } = await h.token();
    const ok = async (patch: unknown) => {
      const response = await call(h.app, "PATCH", "/profiles/me", patch, token);
      expect(response.status, `${JSON.stringify(patch).slice(0, 80)} → ${JSON.stringify(response.body)}`).toBe(200);
      return response.body.profile;
    };
    expect((await ok({ bio: "x".repeat(1000) })).bio).toHaveLength(1000);
    expect([...(await ok({ bio: "😀".repeat(1000) })).bio]).toHaveLength(1000); // characters, not UTF-16 units
    expect((await ok({ bio: "" })).bio).toBe("");
    expect((await ok({ phone: "+12" })).phone).toBe("+12");
    expect((await ok({ phone: "+123456789012345" })).phone).toBe("+123456789012345");
    expect((await ok({ address: { country: "JP" } })).address).toEqual({ country: "JP" });
    expect((await ok({ address: { line1: "  1 Main St  ", city: "Springfield", region: "IL", country: "US" } })).address).toEqual({
      line1: "1 Main St",
      city: "Springfield",
      region: "IL",
      country: "US",
    });
    const big = { blob: "x".repeat(16 * 1024 - 11) }; // {"blob":"…"} is exactly 16 KB
    expect(Buffer.byteLength(JSON.stringify(big))).toBe(16 * 1024);
    expect((await ok({ preferences: big })).preferences).toEqual(big);
    const unicode = { ключ: "значение", emoji: "🎉", nested: { a: [1, 2.5, null, true, { b: "c" }] } };
    expect((await ok({ preferences: unicode })).preferences).toEqual(unicode);
    expect((await ok({ avatarUrl: "https://images.example.co.uk/a/b.png?size=64#x" })).avatarUrl).toBe("https://images.example.co.uk/a/b.png?size=64#x");
  });
});

describe("PATCH /profiles/me rejects bad input with 400 validation_failed and changes nothing", () => {
  const cases: [string, unknown, string][] = [
    ["an empty object", {}, ""],
    ["an unknown field", { nickname: "ada" }, ""],
    ["a server-owned field", { userId: "0190a0a0-0000-7000-8000-000000000000" }, ""],
    ["id", { id: "0190a0a0-0000-7000-8000-000000000000", bio: "x" }, ""],
    ["an array body", [{ bio: "x" }], ""],
    ["a string body", '"bio"', ""],
    ["a number body", "42", ""],
    ["a null body", "null", ""],
    ["avatarUrl over http", { avatarUrl: "http://cdn.example.com/a.png" }, "avatarUrl"],
    ["avatarUrl javascript:", { avatarUrl: "javascript:alert(1)" }, "avatarUrl"],
    ["avatarUrl data:", { avatarUrl: "data:image/png;base64,AAAA" }, "avatarUrl"],
    ["avatarUrl without a host", { avatarUrl: "https://" }, "avatarUrl"],
    ["avatarUrl not a URL", { avatarUrl: "cdn.example.com/a.png" }, "avatarUrl"],
    ["avatarUrl with credentials", { avatarUrl: "https://user:secret@cdn.example.com/a.png" }, "avatarUrl"],
    ["avatarUrl with spaces", { avatarUrl: " https://cdn.example.com/a.png" }, "avatarUrl"],
    ["avatarUrl on an IP address", { avatarUrl: "https://169.254.169.254/latest" }, "avatarUrl"],
    ["avatarUrl too long", { avatarUrl: `https://cdn.example.com/${"a".repeat(2048)}` }, "avatarUrl"],
    ["avatarUrl a number", { avatarUrl: 42 }, "avatarUrl"],
    ["phone without +", { phone: "14155550123" }, "phone"],
    ["phone with spaces", { phone: "+1 415 555 0123" }, "phone"],
    ["phone with dashes", { phone: "+1-415-555-0123" }, "phone"],
    ["phone too long", { phone: "+1234567890123456" }, "phone"],
    ["phone with country code 0", { phone: "+04155550123" }, "phone"],
    ["phone only +", { phone: "+" }, "phone"],
    ["phone a number", { phone: 14155550123 }, "phone"],
    ["bio over 1000 characters", { bio: "x".repeat(1001) }, "bio"],
    ["bio with a NUL", { bio: "a\u0000b" }, "bio"],
    ["bio with a control character", { bio: "bell\u0007" }, "bio"],
    ["bio an object", { bio: { text: "x" } }, "bio"],
    ["bio with an unpaired surrogate", { bio: "x\ud800y" }, "bio"],
    ["avatarUrl with an unpaired surrogate", { avatarUrl: "https://cdn.example.com/\udc00.png" }, "avatarUrl"],
    ["preferences with an unpaired surrogate in a value", { preferences: { a: "\ud800" } }, "preferences"],
    ["preferences with an unpaired surrogate in a key", { preferences: { "\udbff": 1 } }, "preferences"],
    ["preferences with an unpaired surrogate deep inside", { preferences: { a: [{ b: ["ok", "\udc00"] }] } }, "preferences"],
    ["address with an unpaired surrogate", { address: { country: "DE", city: "\udc00" } }, "address.city"],
    ["preferences an array", { preferences: ["dark"] }, "preferences"],
    ["preferences a string", { preferences: '{"theme":"dark"}' }, "preferences"],
    ["preferences null", { preferences: null }, "preferences"],
    ["preferences over 16 KB", { preferences: { blob: "x".repeat(16 * 1024 - 10) } }, "preferences"],
    ["preferences with a NUL in a value", { preferences: { a: "x\u0000" } }, "preferences"],
    ["preferences with a NUL in a key", { preferences: { "a\u0000": 1 } }, "preferences"],
    ["preferences with __proto__", { preferences: JSON.parse('{"__proto__":{"polluted":true}}') }, "preferences"],
    ["preferences nested too deep", { preferences: JSON.parse(`${'{"a":'.repeat(20)}1${"}".repeat(20)}`) }, "preferences"],
    ["address a string", { address: "1 Main St, Springfield" }, "address"],
    ["address without country", { address: { line1: "1 Main St" } }, "address.country"],
    ["address with a lower-case country", { address: { country: "de" } }, "address.country"],
    ["address with a 3-letter country", { address: { country: "DEU" } }, "address.country"],
    ["address with an unknown field", { address: { country: "DE", street: "x" } }, "address"],
    ["address with an empty line", { address: { country: "DE", line1: "   " } }, "address.line1"],
    ["address with a line break in a line", { address: { country: "DE", city: "Ber\nlin" } }, "address.city"],
    ["address with a too long postal code", { address: { country: "DE", postalCode: "1".repeat(21) } }, "address.postalCode"],
  ];

  test.each(cases)("%s", async (_name, body, path) => {
    const { userId, token } = await h.token();
    const before = h.database.stats.queries;
    const response = await call(h.app, "PATCH", "/profiles/me", body, token);
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    expect(response.body.error.code).toBe("validation_failed");
    expect(response.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect(h.database.stats.queries).toBe(before);
    expect(await rowsFor(userId)).toHaveLength(0);
    expect(h.bus.entries).toHaveLength(0);
  });

  test("malformed JSON, a missing body, the wrong media type and an oversized body", async () => {
    const { token } = await h.token();
    const malformed = await call(h.app, "PATCH", "/profiles/me", "{bio:", token);
    expect([malformed.status, malformed.body.error.code]).toEqual([400, "malformed_json"]);
    const missing = await call(h.app, "PATCH", "/profiles/me", undefined, token);
    expect([missing.status, missing.body.error.code]).toEqual([400, "validation_failed"]);
    const text = await call(h.app, "PATCH", "/profiles/me", JSON.stringify({ bio: "x" }), token, { "content-type": "text/plain" });
    expect([text.status, text.body.error.code]).toEqual([415, "unsupported_media_type"]);
    const huge = await call(h.app, "PATCH", "/profiles/me", { preferences: { blob: "x".repeat(1024 * 1024) } }, token);
    expect([huge.status, huge.body.error.code]).toEqual([413, "payload_too_large"]);
  });

  test("needs a valid access token", async () => {
    const response = await call(h.app, "PATCH", "/profiles/me", { bio: "x" });
    expect([response.status, response.body.error.code]).toEqual([401, "unauthorized"]);
  });
});

describe("GET /profiles/{userId}", () => {
  test("an ADMIN reads anyone's profile in one round trip", async () => {
    const owner = await h.token();
    const created = await call(h.app, "GET", "/profiles/me", undefined, owner.token);
    const admin = await h.token({ role: "ADMIN" });
    const [response, trips] = await counted(() => call(h.app, "GET", `/profiles/${owner.userId}`, undefined, admin.token));
    expect(response.status).toBe(200);
    expect(response.body.profile).toEqual(created.body.profile);
    expect(trips).toBe(1);
    // Upper-case spelling of the same id finds the same profile.
    const upper = await call(h.app, "GET", `/profiles/${owner.userId.toUpperCase()}`, undefined, admin.token);
    expect(upper.body.profile.id).toBe(created.body.profile.id);
  });

  test("a user reads their own profile; other users get 403 whether or not the profile exists", async () => {
    const owner = await h.token();
    await call(h.app, "GET", "/profiles/me", undefined, owner.token);
    const self = await call(h.app, "GET", `/profiles/${owner.userId}`, undefined, owner.token);
    expect(self.status).toBe(200);
    expect(self.body.profile.userId).toBe(owner.userId);
    const selfUpper = await call(h.app, "GET", `/profiles/${owner.userId.toUpperCase()}`, undefined, owner.token);
    expect(selfUpper.status).toBe(200);
    for (const role of ["CUSTOMER", "VENDOR"] as const) {
      const other = await h.token({ role });
      const before = h.database.stats.queries;
      const existing = await call(h.app, "GET", `/profiles/${owner.userId}`, undefined, other.token);
      expect([existing.status, existing.body.error.code]).toEqual([403, "forbidden"]);
      const missing = await call(h.app, "GET", `/profiles/${uuidv7()}`, undefined, other.token);
      expect([missing.status, missing.body.error.code]).toEqual([403, "forbidden"]);
      expect(h.database.stats.queries).toBe(before); // decided before touching the database
    }
  });

  test("404 when the user has no profile; reading never creates one", async () => {
    const admin = await h.token({ role: "ADMIN" });
    const userId = uuidv7();
    const response = await call(h.app, "GET", `/profiles/${userId}`, undefined, admin.token);
    expect([response.status, response.body.error.code]).toEqual([404, "not_found"]);
    const self = await h.token({ userId });
    expect((await call(h.app, "GET", `/profiles/${userId}`, undefined, self.token)).status).toBe(404);
    expect(await rowsFor(userId)).toHaveLength(0);
    expect(h.bus.entries).toHaveLength(0);
  });

  test("bad ids and missing tokens", async () => {
    const admin = await h.token({ role: "ADMIN" });
    for (const id of ["not-a-uuid", "123", "0190a0a0-0000-7000-8000-00000000000", "0190a0a0-0000-7000-8000-00000000000g", "'%20or%201=1"]) {
      const response = await call(h.app, "GET", `/profiles/${id}`, undefined, admin.token);
      expect([id, response.status, response.body.error.code]).toEqual([id, 400, "validation_failed"]);
      expect(response.body.error.details[0].path).toBe("userId");
    }
    const anonymous = await call(h.app, "GET", `/profiles/${uuidv7()}`);
    expect([anonymous.status, anonymous.body.error.code]).toEqual([401, "unauthorized"]);
    const patch = await call(h.app, "PATCH", `/profiles/${uuidv7()}`, { bio: "x" }, admin.token);
    expect(patch.status).toBe(405);
  });
});

describe("events survive a bus that is down", () => {
  test("the change commits, the outbox keeps the event, and the sweeper publishes it later", async () => {
    const { userId, token } = await h.token();
    h.bus.down = true;
    const response = await call(h.app, "PATCH", "/profiles/me", { bio: "Written while the bus is down." }, token);
    expect(response.status).toBe(200);
    expect(h.bus.entries).toHaveLength(0);
    // Both rows come from one statement (same created_at): their order is not defined, and
    // delivery is unordered anyway.
    const byType = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
    expect((await outboxFor(userId)).map((row) => [row.type, row.publishedAt]).sort(byType)).toEqual([
      ["profile.created", null],
      ["profile.updated", null],
    ]);
    h.bus.down = false;
    const sweep = () => profileJobs["outbox-sweeper"]!.run(h.ctx);
    // Within the grace period the sweeper leaves the rows to the request's own relay.
    expect(await sweep()).toMatchObject({ published: 0 });
    await db().execute(sql`update ${profileOutbox} set "created_at" = now() - interval '1 minute' where "published_at" is null`);
    expect(await sweep()).toMatchObject({ published: 2, failed: 0 });
    expect(h.bus.entries.map((e) => [e.detailType, e.detail.data.profileId]).sort(byType)).toEqual([
      ["profile.created", response.body.profile.id],
      ["profile.updated", response.body.profile.id],
    ]);
    expect((await outboxFor(userId)).every((row) => row.publishedAt !== null)).toBe(true);
    expect(await sweep()).toMatchObject({ published: 0 });
  });
});

describe("service documents", () => {
  test("health and OpenAPI with the address and preferences shapes", async () => {
    const health = await call(h.app, "GET", "/profiles/health");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ service: "profile", status: "ok", database: { status: "ok" } });
    const openapi = await call(h.app, "GET", "/profiles/openapi.json");
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths).sort()).toEqual(["/profiles/health", "/profiles/me", "/profiles/{userId}"]);
    const patch = openapi.body.paths["/profiles/me"].patch.requestBody.content["application/json"].schema;
    expect(patch.additionalProperties).toBe(false);
    const address = patch.properties.address.anyOf.find((s: { type?: string }) => s.type === "object");
    expect(address.required).toEqual(["country"]);
    expect(Object.keys(address.properties)).toEqual(["line1", "line2", "city", "region", "postalCode", "country"]);
    expect(patch.properties.preferences).toMatchObject({ type: "object" });
    expect(JSON.stringify(patch.properties.bio)).toContain('"maxLength":1000');
  });
});
