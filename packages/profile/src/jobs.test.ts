import { createEvent, type EventEnvelope, eventHandler, UnknownEventError, uuidv7 } from "@enclave/core";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { profileJobs } from "./jobs";
import { profileInbox, profileOutbox, userProfilesTable } from "./profile.sql";
import { call, createProfileHarness, type ProfileHarness } from "./testing";

const SUBSCRIBER = "on-user-registered";

let h: ProfileHarness;
let handle: (event: unknown) => Promise<void>;
beforeAll(async () => {
  h = await createProfileHarness();
  const handler = eventHandler(SUBSCRIBER, profileJobs["on-user-registered"], h.ctx);
  handle = (event) => handler(event as EventEnvelope, { attempt: 1 });
});
afterAll(() => h?.dispose());
beforeEach(() => {
  h.bus.entries.length = 0;
});

const registered = (userId = uuidv7()) =>
  createEvent(
    "user.registered",
    { userId, email: `${userId}@example.com`, name: "New User", role: "CUSTOMER" },
    { correlationId: `req-${userId}`, actor: userId },
  );
const profilesOf = (userId: string) => h.database.db.select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
const inboxOf = (eventId: string) => h.database.db.select().from(profileInbox).where(eq(profileInbox.eventId, eventId));

describe("on user.registered", () => {
  test("creates the default profile, records the event in the inbox and publishes profile.created", async () => {
    const event = registered();
    await handle(event);
    const [profile, ...more] = await profilesOf(event.data.userId);
    expect(more).toHaveLength(0);
    expect(profile).toMatchObject({ userId: event.data.userId, avatarUrl: null, phone: null, address: null, bio: null, preferences: {} });
    expect(await inboxOf(event.id)).toEqual([{ subscriber: SUBSCRIBER, eventId: event.id, processedAt: expect.any(Date) }]);
    expect(h.bus.entries.map((e) => [e.source, e.detailType, e.detail.data, e.detail.metadata])).toEqual([
      ["enclave.profile", "profile.created", { profileId: profile?.id, userId: event.data.userId }, event.metadata],
    ]);
  });

  test("the same event delivered twice (or concurrently) applies once", async () => {
    const event = registered();
    await handle(event);
    await handle(event);
    await Promise.all([handle(event), handle(event), handle(event)]);
    expect(await profilesOf(event.data.userId)).toHaveLength(1);
    expect(await inboxOf(event.id)).toHaveLength(1);
    expect(h.bus.entries).toHaveLength(1);
  });

  test("concurrent first deliveries of one event apply once", async () => {
    const event = registered();
    await Promise.all(Array.from({ length: 5 }, () => handle(event)));
    expect(await profilesOf(event.data.userId)).toHaveLength(1);
    expect(await inboxOf(event.id)).toHaveLength(1);
    expect(h.bus.entries).toHaveLength(1);
  });

  test("a user who already opened their profile keeps it; no second profile.created", async () => {
    const { userId, token } = await h.token();
    const mine = await call(h.app, "PATCH", "/profiles/me", { bio: "Here before the event." }, token);
    h.bus.entries.length = 0;
    const event = registered(userId);
    await handle(event);
    const profiles = await profilesOf(userId);
    expect(profiles.map((p) => [p.id, p.bio])).toEqual([[mine.body.profile.id, "Here before the event."]]);
    expect(await inboxOf(event.id)).toHaveLength(1);
    expect(h.bus.entries).toHaveLength(0);
  });

  test("a second user.registered event for the same user (a new id) creates nothing new", async () => {
    const first = registered();
    await handle(first);
    const second = { ...registered(first.data.userId) };
    await handle(second);
    expect(await profilesOf(first.data.userId)).toHaveLength(1);
    expect(await inboxOf(second.id)).toHaveLength(1);
    expect(h.bus.entries).toHaveLength(1);
  });

  test("when the bus is down after commit the profile exists and profile.created waits in the outbox", async () => {
    const event = registered();
    h.bus.down = true;
    try {
      await handle(event); // the relay never throws: the effect is committed
    } finally {
      h.bus.down = false;
    }
    const [profile] = await profilesOf(event.data.userId);
    const outbox = (await h.database.db.select().from(profileOutbox)).filter((row) => row.detail.data.userId === event.data.userId);
    expect(outbox.map((row) => [row.type, row.detail.data.profileId, row.publishedAt])).toEqual([["profile.created", profile?.id, null]]);
    expect(await inboxOf(event.id)).toHaveLength(1);
  });
});

describe("envelopes it cannot apply throw (the bus retries, then dead-letters) and change nothing", () => {
  const valid = registered();
  const cases: [string, unknown][] = [
    ["an unknown version", { ...valid, version: 2 }],
    ["another event type", { ...valid, type: "user.role_changed" }],
    ["data that breaks the contract", { ...valid, data: { ...valid.data, userId: "not-a-uuid" } }],
    ["data without the user id", { ...valid, data: { email: "a@b.c", name: "A", role: "CUSTOMER" } }],
    ["an unknown role", { ...valid, data: { ...valid.data, role: "ROOT" } }],
    ["a missing id", { ...valid, id: undefined }],
    ["an id that is not a UUID", { ...valid, id: "evt-1" }],
    ["no metadata", { ...valid, metadata: undefined }],
    ["a string instead of an object", JSON.stringify(valid)],
    ["null", null],
  ];

  test.each(cases)("%s", async (_name, detail) => {
    await expect(handle(detail)).rejects.toBeInstanceOf(UnknownEventError);
    expect(await profilesOf(valid.data.userId)).toHaveLength(0);
    expect(await h.database.db.select().from(profileInbox).where(eq(profileInbox.eventId, valid.id))).toHaveLength(0);
    expect(h.bus.entries).toHaveLength(0);
  });

  test("the valid event itself still applies afterwards", async () => {
    await handle(valid);
    expect(await profilesOf(valid.data.userId)).toHaveLength(1);
  });
});

describe("event retention", () => {
  const age = (eventId: string, days: number) =>
    h.database.db
      .update(profileInbox)
      .set({ processedAt: sql`now() - ${`${days} days`}::interval` })
      .where(eq(profileInbox.eventId, eventId));

  test("the profile context binds its inbox, so the kernel's retention reaches it", () => {
    expect(h.ctx.events.inbox).toBe(profileInbox);
  });

  test("deletes inbox rows past 30 days; a redelivery inside the window still changes nothing", async () => {
    const young = registered();
    const old = registered();
    await handle(young);
    await handle(old);
    await age(young.id, 29);
    await age(old.id, 31);
    const [created] = await h.database.db.select().from(profileOutbox).where(sql`${profileOutbox.detail}->'data'->>'userId' = ${old.data.userId}`);
    await h.database.db.update(profileOutbox).set({ publishedAt: sql`now() - interval '8 days'` }).where(eq(profileOutbox.id, created!.id));

    const result = await profileJobs["event-retention"]!.run(h.ctx);
    expect(result).toMatchObject({ outbox: 1, inbox: 1, capped: false });
    expect(await inboxOf(old.id)).toHaveLength(0);
    expect(await inboxOf(young.id)).toHaveLength(1);
    expect(await h.database.db.select().from(profileOutbox).where(eq(profileOutbox.id, created!.id))).toHaveLength(0);

    h.bus.entries.length = 0;
    await handle(young);
    expect(await profilesOf(young.data.userId)).toHaveLength(1);
    expect(h.bus.entries).toHaveLength(0);
  });
});
