/**
 * The first event-driven flow, end to end in the local runtime: register on auth → auth outbox
 * → relay → local bus → profile consumer → profile row, with no call to the profile service;
 * and what happens when any link of that chain fails. Runs on PGlite under a temporary
 * DATA_DIR, or on fresh PostgreSQL databases (one per service) when TEST_DATABASE_URL is set.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authOutbox } from "@enclave/auth/auth.sql";
import type { Database, Subscription } from "@enclave/core";
import { developmentPeople } from "@enclave/core/seed";
import { createTestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { profileInbox, profileOutbox, userProfilesTable } from "@enclave/profile/profile.sql";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { listDeliveries } from "./bus";
import type { LocalService } from "./registry";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { localServices } from "./services";

const SLOW = 180_000;

/** Controls the profile consumer: while `failing`, it throws before doing anything. */
interface ConsumerProbe {
  failing: boolean;
  calls: { eventId: string; attempt: number; at: number }[];
}

/** auth and profile as `npm run dev` wires them, the profile consumer wrapped by a probe. */
function servicesWith(probe: ConsumerProbe): LocalService[] {
  return localServices
    .filter((s) => ["auth", "profile"].includes(s.module.manifest.name))
    .map((service) => {
      if (service.module.manifest.name !== "profile") return service;
      const real = service.module.jobs["on-user-registered"] as Subscription;
      const probed: Subscription = {
        ...real,
        handle: async (context, event, delivery) => {
          probe.calls.push({ eventId: event.id, attempt: delivery.attempt, at: performance.now() });
          if (probe.failing) throw new Error("profile store unavailable");
          await real.handle(context, event, delivery);
        },
      };
      return { ...service, module: { ...service.module, jobs: { ...service.module.jobs, "on-user-registered": probed } } };
    });
}

/** A temp DATA_DIR, and fresh server databases per service when TEST_DATABASE_URL is set. */
async function environment() {
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-flow-"));
  const databases = testServerUrl ? await Promise.all([createTestDatabase(["auth"]), createTestDatabase(["profile"])]) : [];
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    LOCAL_CRONS: "0",
    SEED: "none",
    BUS_MAX_ATTEMPTS: "3",
    BUS_RETRY_BASE_MS: "20",
    LOG_LEVEL: "error",
    ...(databases.length > 0 ? { AUTH_DATABASE_URL: databases[0]!.url, PROFILE_DATABASE_URL: databases[1]!.url } : {}),
  };
  return {
    env,
    async dispose() {
      await Promise.all(databases.map((d) => d.dispose()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
async function register(runtime: LocalRuntime, name = "Flow User") {
  counter++;
  const email = `flow-${counter}-${Date.now()}@example.com`;
  const requestId = `flow-request-${counter}`;
  const response = await runtime.app.request("/auth/register", {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify({ email, password: "correct horse battery", name }),
  });
  const body = (await response.json()) as { user: { id: string }; accessToken: string };
  expect(response.status, JSON.stringify(body)).toBe(201);
  return { userId: body.user.id, token: body.accessToken, email, requestId };
}

const db = (runtime: LocalRuntime, service: string) => (runtime.databases.get(service) as Database).db;
const profilesOf = (runtime: LocalRuntime, userId: string) =>
  db(runtime, "profile").select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
const inboxOf = (runtime: LocalRuntime, eventId: string) => db(runtime, "profile").select().from(profileInbox).where(eq(profileInbox.eventId, eventId));
async function registeredEventOf(runtime: LocalRuntime, userId: string) {
  const rows = await db(runtime, "auth").select().from(authOutbox).where(sql`${authOutbox.detail}->'data'->>'userId' = ${userId}`);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}
/** Lets the sweeper see outbox rows as older than its grace period (as if a minute had passed). */
const ageOutbox = (runtime: LocalRuntime) =>
  db(runtime, "auth").execute(sql`update ${authOutbox} set "created_at" = now() - interval '1 minute' where "published_at" is null`);

/** The parts of response bodies these tests read. */
interface ResponseBody {
  profile?: { id: string; userId: string };
  error?: { code: string };
  items?: { id: string }[];
  user?: { id: string };
  accessToken?: string;
  redriven?: number;
}

async function json(runtime: LocalRuntime, method: string, path: string, body?: unknown, token?: string) {
  const response = await runtime.app.request(path, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as ResponseBody };
}

describe("user.registered → profile through the local runtime", () => {
  const probe: ConsumerProbe = { failing: false, calls: [] };
  let runtime: LocalRuntime;
  let env: Awaited<ReturnType<typeof environment>>;

  beforeAll(async () => {
    env = await environment();
    runtime = await createLocalRuntime({ env: env.env, services: servicesWith(probe) });
  }, SLOW);
  afterAll(async () => {
    await runtime?.close();
    await env?.dispose();
  });

  test("registering makes the profile appear with no call to the profile service", async () => {
    const user = await register(runtime);
    await runtime.bus.drain();
    // Read straight from the profile database: no request has reached the profile service.
    const [profile, ...more] = await profilesOf(runtime, user.userId);
    expect(more).toHaveLength(0);
    expect(profile).toMatchObject({ userId: user.userId, avatarUrl: null, bio: null, preferences: {} });
    const registered = await registeredEventOf(runtime, user.userId);
    expect(registered).toMatchObject({ source: "enclave.auth", type: "user.registered", publishedAt: expect.any(Date) });
    expect(registered.detail.metadata.correlationId).toBe(user.requestId);
    expect(await inboxOf(runtime, registered.id)).toEqual([{ subscriber: "on-user-registered", eventId: registered.id, processedAt: expect.any(Date) }]);
    // profile.created carries the request id of the registration it came from.
    const created = await db(runtime, "profile").select().from(profileOutbox).where(eq(profileOutbox.type, "profile.created"));
    const mine = created.filter((row) => row.detail.data.userId === user.userId);
    expect(mine.map((row) => [row.detail.data.profileId, row.detail.metadata.correlationId, row.publishedAt !== null])).toEqual([
      [profile?.id, user.requestId, true],
    ]);
    expect(probe.calls.filter((c) => c.eventId === registered.id).map((c) => c.attempt)).toEqual([1]);

    // The user then sees that same profile; the first GET does not create another.
    const me = await json(runtime, "GET", "/profiles/me", undefined, user.token);
    expect(me.status).toBe(200);
    expect(me.body.profile?.id).toBe(profile?.id);
    expect(await profilesOf(runtime, user.userId)).toHaveLength(1);
  });

  test("the same event delivered twice (and once more) makes one profile and one inbox row", async () => {
    const user = await register(runtime);
    await runtime.bus.drain();
    const registered = await registeredEventOf(runtime, user.userId);
    const again = { source: registered.source, detailType: registered.type, detail: registered.detail };
    await runtime.bus.publish([again]);
    await runtime.bus.publish([again]);
    await runtime.bus.drain();
    expect(probe.calls.filter((c) => c.eventId === registered.id)).toHaveLength(3);
    expect(await profilesOf(runtime, user.userId)).toHaveLength(1);
    expect(await inboxOf(runtime, registered.id)).toHaveLength(1);
    const created = (await db(runtime, "profile").select().from(profileOutbox)).filter((row) => row.detail.data.userId === user.userId);
    expect(created).toHaveLength(1);
  });

  test("a failing consumer is retried with backoff, dead-lettered, visible, and after a redrive applied exactly once", async () => {
    probe.failing = true;
    const user = await register(runtime);
    await runtime.bus.drain();
    const registered = await registeredEventOf(runtime, user.userId);
    const attempts = probe.calls.filter((c) => c.eventId === registered.id);
    expect(attempts.map((c) => c.attempt)).toEqual([1, 2, 3]);
    // Backoff: retry n waits at least 0.8 × 20 ms × 2^(n-1) (lower bounds only; 1 ms timer slack).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(16 - 1);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(32 - 1);
    expect(await profilesOf(runtime, user.userId)).toHaveLength(0);
    expect(await inboxOf(runtime, registered.id)).toHaveLength(0);

    // Visible: in the bus, over HTTP, and on disk (what `npm run events:dlq` lists).
    const [dead, ...others] = runtime.bus.deadLetters();
    expect(others).toHaveLength(0);
    expect(dead).toMatchObject({
      subscriber: "profile.on-user-registered",
      attempts: 3,
      lastError: "Error: profile store unavailable",
      event: { source: "enclave.auth", "detail-type": "user.registered", detail: { id: registered.id } },
    });
    const listed = await json(runtime, "GET", "/_local/events/dlq");
    expect(listed.status).toBe(200);
    expect(listed.body.items?.map((d) => d.id)).toEqual([dead!.id]);
    expect(listDeliveries(join(runtime.stageDir, "bus", "dlq")).map((d) => d.id)).toEqual([dead!.id]);

    // Fixed, then redriven over HTTP (what `npm run events:redrive` does with a server running).
    probe.failing = false;
    const redriven = await json(runtime, "POST", "/_local/events/redrive", {});
    expect(redriven).toEqual({ status: 200, body: { redriven: 1 } });
    await runtime.bus.drain();
    expect(await profilesOf(runtime, user.userId)).toHaveLength(1);
    expect(await inboxOf(runtime, registered.id)).toHaveLength(1);
    expect(runtime.bus.deadLetters()).toEqual([]);
    expect(runtime.bus.pending()).toEqual([]);
    expect((await json(runtime, "POST", "/_local/events/redrive", {})).body).toEqual({ redriven: 0 });
    // Exactly once: another delivery of the same event changes nothing.
    await runtime.bus.publish([{ source: registered.source, detailType: registered.type, detail: registered.detail }]);
    await runtime.bus.drain();
    expect(await profilesOf(runtime, user.userId)).toHaveLength(1);
    expect(await inboxOf(runtime, registered.id)).toHaveLength(1);
  });

  test("redrive by id through the bus, and bad redrive requests", async () => {
    probe.failing = true;
    const [a, b] = [await register(runtime), await register(runtime)];
    await runtime.bus.drain();
    const dead = runtime.bus.deadLetters();
    expect(dead).toHaveLength(2);
    probe.failing = false;
    const first = dead.find((d) => d.event.detail.data.userId === a.userId)!;
    for (const bad of [null, { ids: "all" }, { ids: [1, 2] }, [first.id]]) {
      const response = await json(runtime, "POST", "/_local/events/redrive", JSON.stringify(bad));
      expect([JSON.stringify(bad), response.status, response.body.error?.code]).toEqual([JSON.stringify(bad), 400, "validation_failed"]);
    }
    expect(runtime.bus.deadLetters()).toHaveLength(2); // nothing redriven by a bad request
    expect(runtime.bus.redrive([first.id])).toBe(1);
    await runtime.bus.drain();
    expect(await profilesOf(runtime, a.userId)).toHaveLength(1);
    expect(await profilesOf(runtime, b.userId)).toHaveLength(0);
    // A form or plain-text post (what another site's page can send without asking) is refused.
    for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      const response = await runtime.app.request("/_local/events/redrive", {
        method: "POST",
        ...(type ? { headers: { "content-type": type } } : {}),
        body: "{}",
      });
      expect(response.status, String(type)).toBe(415);
      expect(((await response.json()) as ResponseBody).error?.code).toBe("unsupported_media_type");
    }
    expect((await json(runtime, "POST", "/_local/events/redrive", { ids: [dead.find((d) => d !== first)!.id] })).body).toEqual({ redriven: 1 });
    await runtime.bus.drain();
    expect(await profilesOf(runtime, b.userId)).toHaveLength(1);
  });

  test("a relay that dies after the commit and before publishing: the sweeper publishes later, nothing is lost", async () => {
    const publish = vi.spyOn(runtime.bus, "publish").mockRejectedValueOnce(new Error("bus unreachable"));
    const user = await register(runtime); // the registration itself succeeds: the user is committed
    publish.mockRestore();
    await runtime.bus.drain();
    expect(await profilesOf(runtime, user.userId)).toHaveLength(0);
    expect(await registeredEventOf(runtime, user.userId)).toMatchObject({ publishedAt: null });
    // Within the grace period the sweeper leaves the row to the relay of the request that wrote it.
    expect(await runtime.runCron("auth", "outbox-sweeper")).toMatchObject({ published: 0 });
    await ageOutbox(runtime);
    expect(await runtime.runCron("auth", "outbox-sweeper")).toMatchObject({ published: 1, failed: 0 });
    await runtime.bus.drain();
    expect(await profilesOf(runtime, user.userId)).toHaveLength(1);
    expect(await registeredEventOf(runtime, user.userId)).toMatchObject({ publishedAt: expect.any(Date) });
    expect(await runtime.runCron("auth", "outbox-sweeper")).toMatchObject({ published: 0 });
    expect(await runtime.runCron("profile", "outbox-sweeper")).toMatchObject({ published: 0 });
  });
});

describe("restarting the runtime on the same DATA_DIR", () => {
  test(
    "delivers what was pending, and the sweeper publishes what a crash left between commit and publish",
    async () => {
      const env = await environment();
      const probe: ConsumerProbe = { failing: true, calls: [] };
      // A slow retry: the failed delivery is still waiting when the process stops.
      const first = await createLocalRuntime({ env: { ...env.env, BUS_RETRY_BASE_MS: "600000" }, services: servicesWith(probe) });
      let second: LocalRuntime | undefined;
      try {
        const pendingUser = await register(first);
        await vi.waitFor(() => expect(probe.calls).toHaveLength(1));
        await vi.waitFor(() => expect(first.bus.pending()).toEqual([expect.objectContaining({ attempts: 1 })]));

        // Crash between commit and publish: publishing never returns, then the process stops.
        vi.spyOn(first.bus, "publish").mockImplementationOnce(() => new Promise(() => {}));
        const email = `crash-${Date.now()}@example.com`;
        void first.app.request("/auth/register", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ email, password: "correct horse battery", name: "Crash" }),
        });
        const committed = async () => (await db(first, "auth").select().from(authOutbox).where(sql`${authOutbox.detail}->'data'->>'email' = ${email}`))[0];
        await vi.waitFor(async () => expect(await committed()).toBeDefined(), { timeout: 20_000, interval: 50 });
        const crashedUserId = (await committed())!.detail.data.userId as string;
        await first.close();
        expect(listDeliveries(join(first.stageDir, "bus", "pending"))).toHaveLength(1);

        probe.failing = false;
        second = await createLocalRuntime({ env: { ...env.env, SEED: "development" }, services: servicesWith(probe) });
        await second.bus.drain();
        // The pending delivery from the first run was delivered at start.
        expect(await profilesOf(second, pendingUser.userId)).toHaveLength(1);
        expect(second.bus.pending()).toEqual([]);
        // The crashed registration's event is still only in the outbox, until the sweeper runs.
        expect(await profilesOf(second, crashedUserId)).toHaveLength(0);
        await ageOutbox(second);
        expect(await second.runCron("auth", "outbox-sweeper")).toMatchObject({ published: 1, failed: 0 });
        await second.bus.drain();
        expect(await profilesOf(second, crashedUserId)).toHaveLength(1);

        // The seeded administrator (whose profile came from the event too) reads both profiles.
        const login = await json(second, "POST", "/auth/login", { email: "admin@enclave.dev", password: "enclave-admin-dev" });
        expect(login.status).toBe(200);
        expect(await profilesOf(second, login.body.user!.id)).toHaveLength(1);
        for (const userId of [pendingUser.userId, crashedUserId]) {
          const read = await json(second, "GET", `/profiles/${userId}`, undefined, login.body.accessToken);
          expect([read.status, read.body.profile?.userId]).toEqual([200, userId]);
        }
        // Each event was applied once: one inbox row per user.registered (the two users, the administrator, the demo users).
        const inbox = await db(second, "profile").select().from(profileInbox);
        expect(inbox).toHaveLength(3 + Object.keys(developmentPeople).length);
      } finally {
        vi.restoreAllMocks();
        await second?.close();
        await env.dispose();
      }
    },
    SLOW * 2,
  );
});
