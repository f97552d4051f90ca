import { encodeCursor, uuidv7 } from "@enclave/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { recordEvent } from "./audit";
import { type AdminHarness, call, createAdminHarness } from "./testing";

let h: AdminHarness;
let admin: string;

const userA = "0190a0b0-0000-7000-8000-00000000000a";
const userB = "0190a0b0-0000-7000-8000-00000000000b";
const t0 = Date.parse("2026-05-01T12:00:00.000Z");

interface Seeded {
  id: string;
  action: string;
  userId: string;
  resourceType: string;
  createdAt: string;
}
const seeded: Seeded[] = [];

/** 30 events over 25 distinct instants: four share one millisecond, three another, so ties are broken by id. */
beforeAll(async () => {
  h = await createAdminHarness();
  admin = await h.token("ADMIN");
  const kinds = [
    { type: "user.registered", resourceType: "user" },
    { type: "profile.updated", resourceType: "profile" },
    { type: "payment.created", resourceType: "payment" },
  ];
  for (let i = 0; i < 30; i++) {
    const kind = kinds[i % 3] as (typeof kinds)[number];
    const userId = i % 2 === 0 ? userA : userB;
    const at = new Date(t0 + (i < 4 ? 0 : i < 7 ? 60_000 : i * 60_000)).toISOString();
    const id = uuidv7();
    const data =
      kind.resourceType === "user"
        ? { userId }
        : kind.resourceType === "profile"
          ? { userId, profileId: uuidv7() }
          : { paymentId: uuidv7(), senderId: userId, recipientId: uuidv7(), amount: "1.00", currency: "USD", status: "pending" };
    await recordEvent(h.ctx, { id, type: kind.type, version: 1, occurredAt: at, data, metadata: { correlationId: `c${i}`, actor: userId } });
    seeded.push({ id, action: kind.type, userId, resourceType: kind.resourceType, createdAt: at });
  }
});
afterAll(() => h?.dispose());

/** Newest first; the id breaks ties, as PostgreSQL orders UUIDs. */
const newestFirst = (rows: Seeded[]) => [...rows].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id)).map((r) => r.id);

const get = (query: string, token = admin) => call(h.app, "GET", `/admin/audit-logs${query}`, undefined, token);

/** Follows nextCursor to the end; returns every id in order. */
async function allPages(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = query ? "&" : "?";
    const res = await get(`${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.items.map((item: { id: string }) => item.id));
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor && pages < 50);
  return { ids, pages };
}

describe("GET /admin/audit-logs", () => {
  test("a first page of 20, newest first, with the row's fields", async () => {
    const res = await get("");
    expect(res.status).toBe(200);
    expect(res.body.items.map((i: { id: string }) => i.id)).toEqual(newestFirst(seeded).slice(0, 20));
    expect(res.body.nextCursor).toEqual(expect.any(String));
    const newest = seeded.find((s) => s.id === res.body.items[0].id) as Seeded;
    expect(res.body.items[0]).toEqual({
      id: newest.id,
      action: newest.action,
      userId: newest.userId,
      actorId: newest.userId,
      resourceType: newest.resourceType,
      resourceId: expect.any(String),
      details: expect.any(Object),
      ipAddress: null,
      userAgent: null,
      correlationId: expect.stringMatching(/^c\d+$/),
      createdAt: newest.createdAt,
    });
  });

  test.each([1, 3, 7, 29, 30, 100])("pages of %i cover every row exactly once, ties included", async (limit) => {
    const { ids, pages } = await allPages("", limit);
    expect(ids).toEqual(newestFirst(seeded));
    // Fetching limit + 1 rows tells when a page is the last: no empty trailing page.
    expect(pages).toBe(Math.ceil(30 / limit));
  });

  test("the last page has no cursor", async () => {
    const res = await get("?limit=100");
    expect(res.body.items).toHaveLength(30);
    expect(res.body.nextCursor).toBeNull();
  });

  test.each([
    ["userId", `?userId=${userA}`, (s: Seeded) => s.userId === userA],
    ["userId in upper case", `?userId=${userB.toUpperCase()}`, (s: Seeded) => s.userId === userB],
    ["action", "?action=payment.created", (s: Seeded) => s.action === "payment.created"],
    ["resourceType", "?resourceType=profile", (s: Seeded) => s.resourceType === "profile"],
    ["from (inclusive)", `?from=${new Date(t0 + 20 * 60_000).toISOString()}`, (s: Seeded) => s.createdAt >= new Date(t0 + 20 * 60_000).toISOString()],
    ["to (inclusive)", `?to=${new Date(t0 + 60_000).toISOString()}`, (s: Seeded) => s.createdAt <= new Date(t0 + 60_000).toISOString()],
    [
      "from and to with an offset",
      `?from=${encodeURIComponent("2026-05-01T14:10:00+02:00")}&to=${encodeURIComponent("2026-05-01T12:15:00.000Z")}`,
      (s: Seeded) => s.createdAt >= "2026-05-01T12:10:00.000Z" && s.createdAt <= "2026-05-01T12:15:00.000Z",
    ],
    ["from equal to to", `?from=${new Date(t0).toISOString()}&to=${new Date(t0).toISOString()}`, (s: Seeded) => s.createdAt === new Date(t0).toISOString()],
    [
      "everything at once",
      `?userId=${userA}&action=user.registered&resourceType=user&from=2026-05-01T12:00:00Z&to=2026-05-01T12:25:00Z`,
      (s: Seeded) => s.userId === userA && s.action === "user.registered" && s.createdAt <= "2026-05-01T12:25:00.000Z",
    ],
    ["a value nothing has", "?action=nothing.happened", () => false],
  ])("filters by %s, across pages", async (_name, query, keep) => {
    const expected = newestFirst(seeded.filter(keep));
    const single = await get(`${query}&limit=100`);
    expect(single.status, JSON.stringify(single.body)).toBe(200);
    expect(single.body.items.map((i: { id: string }) => i.id)).toEqual(expected);
    expect((await allPages(query, 2)).ids).toEqual(expected);
  });

  test("costs one round trip, with or without filters and cursor", async () => {
    const first = await get("?limit=5");
    for (const query of ["?limit=5", `?userId=${userA}&action=user.registered&from=2026-05-01T12:00:00Z&limit=5&cursor=${first.body.nextCursor}`]) {
      const before = h.database.stats.queries;
      expect((await get(query)).status).toBe(200);
      expect(h.database.stats.queries - before).toBe(1);
    }
  });

  describe("bad input is 400 validation_failed naming the parameter", () => {
    test.each([
      ["userId", "?userId=not-a-uuid"],
      ["userId", "?userId="],
      ["action", "?action="],
      ["action", `?action=${"a".repeat(201)}`],
      ["resourceType", "?resourceType="],
      ["from", "?from=yesterday"],
      ["from", "?from=2026-05-01"],
      ["from", "?from=2026-02-30T00:00:00Z"],
      ["from", "?from=2026-13-01T00:00:00Z"],
      ["to", "?to=2026-05-01T24:00:00Z"],
      ["to", "?to=2026-05-01T12:00:00"],
      ["to", "?to=1714564800000"],
      ["from", "?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z"],
      ["limit", "?limit=0"],
      ["limit", "?limit=101"],
      ["limit", "?limit=1.5"],
      ["limit", "?limit=ten"],
      ["cursor", "?cursor=not-a-cursor"],
      ["cursor", `?cursor=${Buffer.from(JSON.stringify({ t: "1", id: uuidv7() })).toString("base64url")}`],
      ["cursor", `?cursor=${encodeCursor({ t: "2026-05-01T12:00:00.000Z", id: "nope" })}`],
      ["", "?user=abc"],
    ])("%s: %s", async (path, query) => {
      const res = await get(query);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toEqual({ code: "validation_failed", message: expect.any(String), details: expect.any(Array) });
      const details = res.body.error.details as { path: string; message: string }[];
      expect(details.map((d) => d.path)).toContain(path);
    });
  });
});
