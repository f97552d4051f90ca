/**
 * The local events page's data: what `GET /_local/events/recent` reports about events and their
 * deliveries in a real local runtime (registration → profile and admin subscribers, a consumer
 * that keeps failing, a redrive), and the bus's ring of recent events on its own.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BusEntry, EventEnvelope } from "@enclave/core";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { LocalBus } from "./bus";
import type { RecentEventsResponse } from "./events-page";
import { AUDIT_CONSUMER, type ConsumerProbe, PROFILE_CONSUMER, registerUser, servicesWithProbe } from "./events-page.testing";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { testEnvironment } from "./runtime.testing";

describe("the events page against a local runtime", () => {
  const probe: ConsumerProbe = { failing: false };
  let runtime: LocalRuntime;
  let env: Awaited<ReturnType<typeof testEnvironment>>;

  beforeAll(async () => {
    // Slow enough retries that "retrying" is there to be seen between attempts.
    env = await testEnvironment({ BUS_MAX_ATTEMPTS: "3", BUS_RETRY_BASE_MS: "400" });
    runtime = await createLocalRuntime({ env: env.env, services: servicesWithProbe(probe) });
  }, 120_000);
  afterAll(async () => {
    await runtime?.close();
    await env?.dispose();
  });

  const inProcess = (path: string, init: RequestInit) => runtime.app.request(path, init);
  async function recent(): Promise<RecentEventsResponse> {
    const response = await runtime.app.request("/_local/events/recent");
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    return (await response.json()) as RecentEventsResponse;
  }
  const find = (body: RecentEventsResponse, correlationId: string, type: string) =>
    body.items.filter((item) => item.correlationId === correlationId && item.type === type);

  test("serves a self-contained page whose script and style are the only ones allowed to run", async () => {
    const response = await runtime.app.request("/_local/events");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const [, script] = html.match(/<script>([\s\S]*)<\/script>/) ?? [];
    const [, style] = html.match(/<style>([\s\S]*)<\/style>/) ?? [];
    const hash = (source = "") => `'sha256-${createHash("sha256").update(source).digest("base64")}'`;
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    // Nothing loaded from elsewhere, and no markup built from strings.
    expect(html).not.toMatch(/\s(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(html).toContain("Redrive all");
  });

  test("a registration shows user.registered delivered to profile and admin, and what it caused", async () => {
    const user = await registerUser(inProcess, "Ada");
    await runtime.bus.drain();
    const body = await recent();
    const [registered, ...again] = find(body, user.requestId, "user.registered");
    expect(again).toHaveLength(0);
    expect(registered).toMatchObject({
      source: "enclave.auth",
      correlationId: user.requestId,
      eventId: expect.any(String),
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      detail: { type: "user.registered", data: { userId: user.userId, name: "Ada" } },
    });
    expect(registered!.deliveries).toEqual([
      { subscriber: AUDIT_CONSUMER, status: "delivered", attempts: 1, deliveredAt: expect.any(String), redrives: 0 },
      { subscriber: PROFILE_CONSUMER, status: "delivered", attempts: 1, deliveredAt: expect.any(String), redrives: 0 },
    ]);
    // The profile it made was announced under the same correlation id, and shows above it.
    const [created] = find(body, user.requestId, "profile.created");
    expect(created?.deliveries).toEqual([{ subscriber: AUDIT_CONSUMER, status: "delivered", attempts: 1, deliveredAt: expect.any(String), redrives: 0 }]);
    expect(body.items.indexOf(created!)).toBeLessThan(body.items.indexOf(registered!));
    expect(body.deadLetters).toEqual([]);
  });

  test("a consumer that keeps failing is retrying, then dead, and a redrive delivers it", async () => {
    probe.failing = true;
    const user = await registerUser(inProcess);
    const profileDelivery = (body: RecentEventsResponse) =>
      find(body, user.requestId, "user.registered")[0]?.deliveries.find((d) => d.subscriber === PROFILE_CONSUMER);

    const retrying = await vi.waitFor(
      async () => {
        const delivery = profileDelivery(await recent());
        expect(delivery).toMatchObject({ status: "retrying", attempts: 1, lastError: "Error: profile store unavailable", nextAttemptAt: expect.any(String) });
        return delivery!;
      },
      { timeout: 10_000, interval: 10 },
    );
    expect(Number.isNaN(Date.parse(retrying.nextAttemptAt!))).toBe(false);

    const dead = await vi.waitFor(
      async () => {
        const body = await recent();
        expect(profileDelivery(body)).toMatchObject({
          status: "dead",
          attempts: 3,
          lastError: "Error: profile store unavailable",
          deadLetteredAt: expect.any(String),
        });
        return body;
      },
      { timeout: 15_000, interval: 20 },
    );
    const [registered] = find(dead, user.requestId, "user.registered");
    // The other subscriber was not held up by the failing one.
    expect(registered!.deliveries.find((d) => d.subscriber === AUDIT_CONSUMER)).toMatchObject({ status: "delivered", attempts: 1 });
    expect(dead.deadLetterCount).toBe(1);
    expect(dead.deadLetters).toEqual([
      {
        id: `${registered!.id}.${PROFILE_CONSUMER}`,
        subscriber: PROFILE_CONSUMER,
        busEventId: registered!.id,
        eventId: registered!.eventId,
        type: "user.registered",
        source: "enclave.auth",
        correlationId: user.requestId,
        time: registered!.time,
        attempts: 3,
        lastError: "Error: profile store unavailable",
        deadLetteredAt: expect.any(String),
      },
    ]);

    probe.failing = false;
    const response = await runtime.app.request("/_local/events/redrive", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ids: [dead.deadLetters[0]!.id] }),
    });
    expect(await response.json()).toEqual({ redriven: 1 });
    await runtime.bus.drain();
    const after = await recent();
    expect(profileDelivery(after)).toEqual({ subscriber: PROFILE_CONSUMER, status: "delivered", attempts: 1, deliveredAt: expect.any(String), redrives: 1 });
    expect([after.deadLetters, after.deadLetterCount]).toEqual([[], 0]);
    // The profile the redrive made is there too, under the registration's correlation id.
    expect(find(after, user.requestId, "profile.created")).toHaveLength(1);
  });

  test("keeps only the last events, newest first", async () => {
    const { limit } = await recent();
    expect(limit).toBe(300);
    // A source no subscription matches: the ring shows it with no deliveries.
    const ticks: BusEntry[] = Array.from({ length: limit + 25 }, (_, n) => ({
      source: "local.ticks",
      detailType: "tick",
      detail: {
        id: `tick-${n}`,
        type: "tick",
        version: 1,
        time: new Date().toISOString(),
        metadata: { correlationId: "ticks", actor: null },
        data: { n },
      } as unknown as EventEnvelope,
    }));
    for (let at = 0; at < ticks.length; at += 50) await runtime.bus.publish(ticks.slice(at, at + 50));
    const body = await recent();
    expect(body.items).toHaveLength(limit);
    expect(body.items.map((item) => item.eventId)).toEqual(Array.from({ length: limit }, (_, n) => `tick-${limit + 24 - n}`));
    expect(body.items.every((item) => item.deliveries.length === 0 && item.correlationId === "ticks")).toBe(true);
  });
});

describe("the bus's ring of recent events", () => {
  let dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    dirs = [];
  });
  const entry = (n: number, detail?: unknown): BusEntry => ({
    source: "enclave.test",
    detailType: "test.happened",
    detail: (detail ?? { id: `event-${n}`, type: "test.happened", metadata: { correlationId: `c-${n}` }, data: { n } }) as EventEnvelope,
  });

  test("an event that fell out of the ring comes back when its dead letter is redriven", async () => {
    const bus = new LocalBus({ recentEvents: 2, maxAttempts: 1, baseDelayMs: 1 });
    let failing = true;
    bus.subscribe({
      name: "test.flaky",
      pattern: { "detail-type": ["test.happened"] },
      handler: async () => {
        if (failing) throw new Error("down");
      },
    });
    await bus.publish([entry(1), entry(2), entry(3)]);
    await bus.drain();
    expect(bus.recent.list().map((item) => [item.eventId, item.deliveries.map((d) => d.status)])).toEqual([
      ["event-3", ["dead"]],
      ["event-2", ["dead"]],
    ]);
    failing = false;
    const first = bus.deadLetters().find((d) => d.event.detail.id === "event-1")!;
    expect(bus.redrive([first.id])).toBe(1);
    await bus.drain();
    const items = bus.recent.list();
    expect(items).toHaveLength(2);
    expect(items.find((item) => item.eventId === "event-1")?.deliveries).toEqual([
      { subscriber: "test.flaky", status: "delivered", attempts: 1, deliveredAt: expect.any(String), redrives: 1 },
    ]);
  });

  test("what a previous run left pending shows as soon as the next run recovers it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-recent-"));
    dirs.push(dir);
    const subscription = (handler: () => Promise<void>) => ({ name: "test.slow", pattern: { "detail-type": ["test.happened"] }, handler });
    const first = new LocalBus({ dir, maxAttempts: 5, baseDelayMs: 600_000 });
    first.subscribe(
      subscription(async () => {
        throw new Error("not yet");
      }),
    );
    await first.publish([entry(1)]);
    await vi.waitFor(() => expect(first.pending()).toEqual([expect.objectContaining({ attempts: 1 })]));
    await first.close();

    const second = new LocalBus({ dir });
    second.subscribe(subscription(async () => {}));
    expect(second.recent.list()).toEqual([]);
    expect(second.recover()).toBe(1);
    expect(second.recent.list()[0]?.deliveries).toEqual([
      { subscriber: "test.slow", status: "retrying", attempts: 1, lastError: "Error: not yet", nextAttemptAt: expect.any(String), redrives: 0 },
    ]);
    await second.drain();
    expect(second.recent.list()[0]?.deliveries).toMatchObject([{ status: "delivered", attempts: 2 }]);
  });

  test("details that are not envelopes are listed as they are, and long errors are cut", async () => {
    const bus = new LocalBus({ maxAttempts: 1 });
    bus.subscribe({
      name: "test.loud",
      pattern: { source: ["enclave.test"] },
      handler: async () => {
        throw new Error("x".repeat(10_000));
      },
    });
    // JSON objects the bus accepts (it refuses any other detail, as EventBridge does).
    await bus.publish([entry(1, { note: "not an envelope" }), entry(2, { count: 42 })]);
    await bus.drain();
    const items = bus.recent.list();
    expect(items.map((item) => [item.eventId === item.id, item.correlationId, item.detail])).toEqual([
      [true, undefined, { count: 42 }],
      [true, undefined, { note: "not an envelope" }],
    ]);
    expect(items[0]!.deliveries[0]).toMatchObject({ status: "dead", attempts: 1 });
    expect(items[0]!.deliveries[0]!.lastError!.length).toBe(2000);
  });
});
