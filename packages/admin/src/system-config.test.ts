import { eventHandler } from "@enclave/core";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { adminOutbox, auditLogsTable, systemConfigTable } from "./admin.sql";
import { recordEvent } from "./audit";
import { adminJobs } from "./jobs";
import { type AdminHarness, call, createAdminHarness } from "./testing";

let h: AdminHarness;
let adminId: string;
let admin: string;

beforeAll(async () => {
  h = await createAdminHarness();
  adminId = "0190a0b0-0000-7000-8000-00000000a001";
  admin = await h.token("ADMIN", adminId);
});
afterAll(() => h?.dispose());

beforeEach(async () => {
  await h.database.db.execute(sql`truncate ${systemConfigTable}, ${auditLogsTable}, ${adminOutbox}`);
  h.bus.entries.length = 0;
  h.bus.down = false;
});

const put = (key: string, body: unknown, headers: Record<string, string> = {}) => call(h.app, "PUT", `/admin/config/${key}`, body, admin, headers);
const auditRows = () => h.database.db.select().from(auditLogsTable);

/** Round trips one request costs. */
async function roundTrips(run: () => Promise<unknown>): Promise<number> {
  const before = h.database.stats.queries;
  await run();
  return h.database.stats.queries - before;
}

describe("PUT /admin/config/{key}", () => {
  test("creates a key, stamped with the admin who set it", async () => {
    const res = await put("feature.beta", { value: { enabled: true, ratio: 0.25 }, description: "Beta rollout" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      key: "feature.beta",
      value: { enabled: true, ratio: 0.25 },
      description: "Beta rollout",
      updatedAt: expect.any(String),
      updatedBy: adminId,
    });
    expect(Date.parse(res.body.updatedAt)).not.toBeNaN();
    const got = await call(h.app, "GET", "/admin/config/feature.beta", undefined, admin);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  test("replaces the value; an omitted description is kept, null clears it", async () => {
    await put("limits.daily", { value: 100, description: "Daily cap" });
    const otherAdmin = "0190a0b0-0000-7000-8000-00000000a002";
    const replaced = await call(h.app, "PUT", "/admin/config/limits.daily", { value: 250 }, await h.token("ADMIN", otherAdmin));
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ key: "limits.daily", value: 250, description: "Daily cap", updatedBy: otherAdmin });
    const cleared = await put("limits.daily", { value: 250, description: null });
    expect(cleared.body).toMatchObject({ value: 250, description: null, updatedBy: adminId });
    const [row] = await h.database.db.select().from(systemConfigTable);
    expect(row).toMatchObject({ key: "limits.daily", value: 250, description: null, updatedBy: adminId });
  });

  test.each([
    ["null", null],
    ["false", false],
    ["zero", 0],
    ["a decimal", 12.5],
    ["a negative number", -3],
    ["a string of digits", "123"],
    ["the string true", "true"],
    ["the string null", "null"],
    ["an empty string", ""],
    ["a quoted JSON object", '{"a":1}'],
    ["unicode", "żółw 🐢"],
    ["an array", [1, "two", null, { three: [3] }]],
    ["an empty object", {}],
    ["a nested object", { a: { b: { c: [true, false] } } }],
  ])("stores any JSON value exactly: %s", async (_name, value) => {
    const res = await put("any.value", { value });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.value).toEqual(value);
    const got = await call(h.app, "GET", "/admin/config/any.value", undefined, admin);
    expect(got.body.value).toEqual(value);
    const list = await call(h.app, "GET", "/admin/config", undefined, admin);
    expect(list.body.items).toEqual([got.body]);
  });

  test("accepts a value of exactly 64 KB and rejects one byte more", async () => {
    const exact = "x".repeat(64 * 1024 - 2); // JSON adds the two quotes
    expect((await put("big.value", { value: exact })).status).toBe(200);
    const over = await put("big.value", { value: `${exact}x` });
    expect(over.status).toBe(400);
    expect(over.body.error).toMatchObject({ code: "validation_failed", details: [{ path: "value", message: expect.stringContaining("65536") }] });
    expect((await call(h.app, "GET", "/admin/config/big.value", undefined, admin)).body.value).toBe(exact);
  });

  test("publishes config.changed through the outbox and writes one audit row with ip and user agent", async () => {
    const res = await put("feature.x", { value: 1 }, { "user-agent": "admin-console/2.1", "x-forwarded-for": "203.0.113.9", "x-request-id": "req-put-1" });
    expect(res.status).toBe(200);
    expect(h.bus.entries).toHaveLength(1);
    const [entry] = h.bus.entries;
    expect(entry).toMatchObject({
      source: "enclave.admin",
      detailType: "config.changed",
      detail: { type: "config.changed", version: 1, data: { key: "feature.x" }, metadata: { correlationId: "req-put-1", actor: adminId } },
    });
    const outbox = await h.database.db.select().from(adminOutbox);
    expect(outbox).toHaveLength(1);
    expect(outbox[0]).toMatchObject({ id: entry?.detail.id, type: "config.changed" });
    expect(outbox[0]?.publishedAt).not.toBeNull();
    const rows = await auditRows();
    expect(rows).toEqual([
      expect.objectContaining({
        id: entry?.detail.id,
        action: "config.changed",
        userId: adminId,
        actorId: adminId,
        resourceType: "config",
        resourceId: "feature.x",
        details: { key: "feature.x", operation: "created", value: 1 },
        ipAddress: "203.0.113.9",
        userAgent: "admin-console/2.1",
        correlationId: "req-put-1",
      }),
    ]);
    expect(rows[0]?.createdAt.toISOString()).toBe(entry?.detail.occurredAt);
  });

  test("the event coming back through the audit consumer adds no second row", async () => {
    await put("feature.y", { value: "a" });
    await put("feature.y", { value: "b" });
    const handle = eventHandler("audit", adminJobs.audit, h.ctx);
    for (const entry of h.bus.entries) {
      await handle(entry.detail, { attempt: 1 });
      await handle(entry.detail, { attempt: 2 });
    }
    const rows = await auditRows();
    expect(rows).toHaveLength(2);
    expect(rows.map((r) => r.details).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { key: "feature.y", operation: "created", value: "a" },
      { key: "feature.y", operation: "updated", value: "b" },
    ]);
    expect(rows.map((r) => r.id).sort()).toEqual(h.bus.entries.map((e) => e.detail.id).sort());
  });

  test("takes the caller's address from API Gateway, not from X-Forwarded-For", async () => {
    const res = await h.app.request(
      "/admin/config/feature.gw",
      {
        method: "PUT",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json", "x-forwarded-for": "6.6.6.6" },
        body: JSON.stringify({ value: true }),
      },
      { requestContext: { http: { sourceIp: "198.51.100.7", userAgent: "gw-agent" } } },
    );
    expect(res.status).toBe(200);
    const [row] = await auditRows();
    expect(row).toMatchObject({ ipAddress: "198.51.100.7", userAgent: "gw-agent" });
  });

  test("costs two round trips: the statement and the relay's mark-sent", async () => {
    expect(await roundTrips(() => put("rt.key", { value: 1 }))).toBe(2);
    expect(await roundTrips(() => put("rt.key", { value: 2, description: "d" }))).toBe(2);
  });

  test("commits even when the bus is down; the outbox sweeper publishes later", async () => {
    h.bus.down = true;
    const res = await put("feature.offline", { value: 1 });
    expect(res.status).toBe(200);
    expect(h.bus.entries).toHaveLength(0);
    const [pending] = await h.database.db.select().from(adminOutbox);
    expect(pending?.publishedAt).toBeNull();
    h.bus.down = false;
    // The sweeper leaves rows younger than its grace period to the request that wrote them.
    await h.database.db.execute(sql`update ${adminOutbox} set "created_at" = now() - interval '1 minute'`);
    const result = await adminJobs["outbox-sweeper"]!.run(h.ctx);
    expect(result).toEqual({ published: 1, failed: 0 });
    expect(h.bus.entries.map((e) => e.detail.id)).toEqual([pending?.id]);
    expect(await auditRows()).toHaveLength(1);
  });
});

describe("GET /admin/config", () => {
  test("lists every key by key, in one round trip", async () => {
    await put("zeta", { value: 1 });
    await put("alpha.one", { value: [1] });
    await put("m_2-x", { value: "m", description: "m key" });
    let res: Awaited<ReturnType<typeof call>> | undefined;
    expect(
      await roundTrips(async () => {
        res = await call(h.app, "GET", "/admin/config", undefined, admin);
      }),
    ).toBe(1);
    expect(res?.status).toBe(200);
    expect(res?.body.items.map((i: { key: string }) => i.key)).toEqual(["alpha.one", "m_2-x", "zeta"]);
    expect(res?.body.items[1]).toEqual({ key: "m_2-x", value: "m", description: "m key", updatedAt: expect.any(String), updatedBy: adminId });
  });

  test("is empty when nothing is configured", async () => {
    expect((await call(h.app, "GET", "/admin/config", undefined, admin)).body).toEqual({ items: [] });
  });
});

describe("GET /admin/config/{key}", () => {
  test("404 for a missing key, in one round trip", async () => {
    let res: Awaited<ReturnType<typeof call>> | undefined;
    expect(
      await roundTrips(async () => {
        res = await call(h.app, "GET", "/admin/config/missing.key", undefined, admin);
      }),
    ).toBe(1);
    expect(res?.status).toBe(404);
    expect(res?.body.error.code).toBe("not_found");
  });
});

describe("DELETE /admin/config/{key}", () => {
  test("deletes with config.changed and an audit row holding the deleted value", async () => {
    await put("old.flag", { value: { on: true } });
    h.bus.entries.length = 0;
    let res: Awaited<ReturnType<typeof call>> | undefined;
    const trips = await roundTrips(async () => {
      res = await call(h.app, "DELETE", "/admin/config/old.flag", undefined, admin, { "user-agent": "cli/1" });
    });
    expect(res?.status).toBe(204);
    expect(res?.body).toBeUndefined();
    expect(trips).toBe(2);
    expect((await call(h.app, "GET", "/admin/config/old.flag", undefined, admin)).status).toBe(404);
    expect(h.bus.entries.map((e) => [e.detailType, e.detail.data])).toEqual([["config.changed", { key: "old.flag" }]]);
    const deleted = (await auditRows()).find((r) => r.id === h.bus.entries[0]?.detail.id);
    expect(deleted).toMatchObject({
      action: "config.changed",
      resourceId: "old.flag",
      userAgent: "cli/1",
      details: { key: "old.flag", operation: "deleted", value: { on: true } },
    });
  });

  test("404 for a missing key, with no event and no audit row, in one round trip", async () => {
    let res: Awaited<ReturnType<typeof call>> | undefined;
    const trips = await roundTrips(async () => {
      res = await call(h.app, "DELETE", "/admin/config/never.set", undefined, admin);
    });
    expect(res?.status).toBe(404);
    expect(res?.body.error.code).toBe("not_found");
    expect(trips).toBe(1);
    expect(h.bus.entries).toHaveLength(0);
    expect(await h.database.db.select().from(adminOutbox)).toHaveLength(0);
    expect(await auditRows()).toHaveLength(0);
  });
});

describe("bad input", () => {
  const badKeys = [
    ["upper case", "Feature"],
    ["a leading dot", ".hidden"],
    ["a leading dash", "-x"],
    ["a space", "a%20b"],
    ["a colon", "a:b"],
    ["129 characters", "a".repeat(129)],
    ["non-ASCII", "%C5%BC"],
  ];
  test.each(badKeys)("a key with %s is rejected on GET, PUT and DELETE", async (_name, key) => {
    for (const [method, body] of [
      ["GET", undefined],
      ["PUT", { value: 1 }],
      ["DELETE", undefined],
    ] as const) {
      const res = await call(h.app, method, `/admin/config/${key}`, body, admin);
      expect(res.status, `${method} ${key}`).toBe(400);
      expect(res.body.error).toMatchObject({ code: "validation_failed", message: expect.any(String), details: [{ path: "key", message: expect.any(String) }] });
    }
    expect(await h.database.db.select().from(systemConfigTable)).toHaveLength(0);
  });

  test("a key of 128 characters is fine", async () => {
    expect((await put(`a${"b".repeat(127)}`, { value: 1 })).status).toBe(200);
  });

  test.each([
    ["no value", { description: "x" }, "value"],
    ["an unknown field", { value: 1, extra: true }, ""],
    ["a description that is not a string", { value: 1, description: 5 }, "description"],
    ["a description over 500 characters", { value: 1, description: "d".repeat(501) }, "description"],
    ["a body that is not an object", [1, 2], ""],
    ["a JSON string body", '"text"', ""],
  ])("PUT with %s is 400 validation_failed", async (_name, body, path) => {
    const res = await put("bad.body", body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(await h.database.db.select().from(systemConfigTable)).toHaveLength(0);
    expect(await auditRows()).toHaveLength(0);
  });

  test("PUT with an empty body is 400 validation_failed", async () => {
    const res = await call(h.app, "PUT", "/admin/config/bad.body", undefined, admin);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
  });

  test("PUT with malformed JSON is 400 malformed_json", async () => {
    const res = await put("bad.body", "{value: 1");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("malformed_json");
  });

  test("PUT with a non-JSON media type is 415", async () => {
    const res = await call(h.app, "PUT", "/admin/config/bad.body", "value=1", admin, { "content-type": "application/x-www-form-urlencoded" });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe("unsupported_media_type");
  });

  test("methods a path does not serve are 405 with Allow", async () => {
    const res = await call(h.app, "POST", "/admin/config/some.key", { value: 1 }, admin);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toContain("PUT");
  });
});

test("recording a config.changed the route already audited is a duplicate", async () => {
  await put("dedupe.key", { value: 1 });
  const [entry] = h.bus.entries;
  expect(await recordEvent(h.ctx, entry?.detail)).toBe("duplicate");
  expect(await auditRows()).toHaveLength(1);
});
