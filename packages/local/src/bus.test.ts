import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BusEntry, createEvent, type DeliveryInfo, type EventEnvelope, uuidv7 } from "@enclave/core";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { type Delivery, LocalBus, listDeliveries } from "./bus";

const registered = () => {
  const userId = uuidv7();
  return createEvent("user.registered", { userId, email: `${userId}@example.com`, name: "U", role: "CUSTOMER" }, { correlationId: "req-1", actor: userId });
};
const entry = (detail: EventEnvelope = registered(), source = "enclave.auth"): BusEntry => ({ source, detailType: detail.type, detail });
const onRegistered = { source: ["enclave.auth"], "detail-type": ["user.registered"] };

/** A handler that records its calls and fails while `failures` is above zero. */
function recorder(failures = 0) {
  const calls: { event: EventEnvelope; delivery: DeliveryInfo }[] = [];
  const state = { failures };
  const handler = async (event: EventEnvelope, delivery: DeliveryInfo) => {
    calls.push({ event, delivery });
    if (state.failures > 0) {
      state.failures--;
      throw new Error("store unavailable");
    }
  };
  return { calls, state, handler };
}

let dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "enclave-bus-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

describe("LocalBus delivery", () => {
  test("delivers the EventBridge shape to every matching subscriber, and to nobody else", async () => {
    const bus = new LocalBus();
    const profile = recorder();
    const audit = recorder();
    const payments = recorder();
    bus.subscribe({ name: "profile.on-user-registered", pattern: onRegistered, handler: profile.handler });
    bus.subscribe({ name: "admin.audit", pattern: { source: [{ prefix: "enclave." }] }, handler: audit.handler });
    bus.subscribe({ name: "payments.on-payment", pattern: { "detail-type": [{ prefix: "payment." }] }, handler: payments.handler });
    const event = registered();
    expect(await bus.publish([entry(event)])).toEqual({ failed: [] });
    await bus.drain();
    expect(profile.calls.map((c) => [c.event, c.delivery])).toEqual([[event, { attempt: 1 }]]);
    expect(audit.calls).toHaveLength(1);
    expect(payments.calls).toHaveLength(0);
    expect(bus.pending()).toEqual([]);
  });

  test("patterns see the envelope EventBridge would send (source, detail-type, detail fields)", async () => {
    const bus = new LocalBus();
    const customers = recorder();
    bus.subscribe({ name: "x.customers", pattern: { detail: { data: { role: ["CUSTOMER"] } } }, handler: customers.handler });
    const admin = registered();
    admin.data.role = "ADMIN";
    await bus.publish([entry(registered()), entry(admin)]);
    await bus.drain();
    expect(customers.calls).toHaveLength(1);
    expect(customers.calls[0]?.event.data.role).toBe("CUSTOMER");
  });

  test("a failing subscriber does not hold back another subscriber of the same event", async () => {
    const bus = new LocalBus({ maxAttempts: 2, baseDelayMs: 1 });
    const broken = recorder(Number.POSITIVE_INFINITY);
    const healthy = recorder();
    bus.subscribe({ name: "a.broken", pattern: onRegistered, handler: broken.handler });
    bus.subscribe({ name: "b.healthy", pattern: onRegistered, handler: healthy.handler });
    await bus.publish([entry()]);
    await bus.drain();
    expect(healthy.calls).toHaveLength(1);
    expect(broken.calls).toHaveLength(2);
    expect(bus.deadLetters().map((d) => d.subscriber)).toEqual(["a.broken"]);
  });

  test("an entry whose detail is not a JSON object is refused, as EventBridge refuses it, and nothing is delivered", async () => {
    const bus = new LocalBus();
    const audit = recorder();
    bus.subscribe({ name: "admin.audit", pattern: { source: [{ prefix: "enclave." }] }, handler: audit.handler });
    const good = registered();
    const malformed = [null, "text", [1]].map((detail) => ({ source: "enclave.auth", detailType: "user.registered", detail }) as unknown as BusEntry);
    const result = await bus.publish([...malformed, entry(good)]);
    expect(result.failed).toEqual(malformed.map(() => ({ id: "", error: "MalformedDetail: detail must be a JSON object" })));
    await bus.drain();
    expect(audit.calls.map((c) => c.event.id)).toEqual([good.id]);
    expect(bus.pending()).toEqual([]);
  });

  test("drain resolves at once when idle", async () => {
    await expect(new LocalBus().drain()).resolves.toBeUndefined();
  });
});

describe("LocalBus retries, dead letters and redrive", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5); // jitter factor exactly 1
  });

  test("retries with exponential backoff, then dead-letters with the attempts and the last error", async () => {
    const bus = new LocalBus({ maxAttempts: 4, baseDelayMs: 100 });
    const consumer = recorder(Number.POSITIVE_INFINITY);
    bus.subscribe({ name: "profile.on-user-registered", pattern: onRegistered, handler: consumer.handler });
    const event = registered();
    await bus.publish([entry(event)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(consumer.calls.map((c) => c.delivery.attempt)).toEqual([1]);
    // Retry n waits base × 2^(n-1): 100, 200, 400 ms.
    for (const [wait, attempts] of [
      [100, 2],
      [200, 3],
      [400, 4],
    ] as const) {
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(consumer.calls).toHaveLength(attempts - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(consumer.calls).toHaveLength(attempts);
    }
    expect(consumer.calls.map((c) => c.delivery.attempt)).toEqual([1, 2, 3, 4]);
    const [dead, ...more] = bus.deadLetters();
    expect(more).toHaveLength(0);
    expect(dead).toMatchObject({
      subscriber: "profile.on-user-registered",
      attempts: 4,
      lastError: "Error: store unavailable",
      deadLetteredAt: expect.any(String),
      event: { source: "enclave.auth", "detail-type": "user.registered", detail: event },
    });
    expect(bus.pending()).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(consumer.calls).toHaveLength(4); // dead letters are not retried on their own
  });

  test("retry delays carry ±20% jitter", async () => {
    const bus = new LocalBus({ maxAttempts: 3, baseDelayMs: 1000 });
    const consumer = recorder(Number.POSITIVE_INFINITY);
    bus.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    vi.spyOn(Math, "random").mockReturnValue(0);
    await bus.publish([entry()]);
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(799);
    expect(consumer.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(consumer.calls).toHaveLength(2); // 0.8 × 1000
    vi.spyOn(Math, "random").mockReturnValue(0.99);
    const late = new LocalBus({ maxAttempts: 2, baseDelayMs: 1000 });
    const other = recorder(Number.POSITIVE_INFINITY);
    late.subscribe({ name: "x.y", pattern: onRegistered, handler: other.handler });
    await late.publish([entry()]);
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1195);
    expect(other.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(other.calls).toHaveLength(2); // (0.8 + 0.99 × 0.4) × 1000 = 1196: at most 1.2 ×
  });

  test("succeeds on a retry: delivered once more, nothing dead-lettered", async () => {
    const bus = new LocalBus({ maxAttempts: 5, baseDelayMs: 10 });
    const consumer = recorder(2);
    bus.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    await bus.publish([entry()]);
    const drained = bus.drain();
    await vi.advanceTimersByTimeAsync(1_000);
    await drained;
    expect(consumer.calls.map((c) => c.delivery.attempt)).toEqual([1, 2, 3]);
    expect(bus.deadLetters()).toEqual([]);
    expect(bus.pending()).toEqual([]);
  });

  test("redrive sends dead letters through their subscriber again with fresh attempts", async () => {
    const bus = new LocalBus({ maxAttempts: 2, baseDelayMs: 10 });
    const consumer = recorder(Number.POSITIVE_INFINITY);
    bus.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    const [first, second] = [registered(), registered()];
    await bus.publish([entry(first), entry(second)]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(bus.deadLetters()).toHaveLength(2);
    consumer.state.failures = 0;
    const chosen = bus.deadLetters().find((d) => d.event.detail.id === first.id) as Delivery;
    expect(bus.redrive(["no-such-delivery"])).toBe(0);
    expect(bus.redrive([chosen.id])).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(consumer.calls.at(-1)).toMatchObject({ event: first, delivery: { attempt: 1 } });
    expect(bus.deadLetters().map((d) => d.event.detail.id)).toEqual([second.id]);
    expect(bus.redrive()).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(consumer.calls.at(-1)).toMatchObject({ event: second, delivery: { attempt: 1 } });
    expect(bus.deadLetters()).toEqual([]);
    expect(bus.pending()).toEqual([]);
    expect(bus.redrive()).toBe(0);
  });

  test("a redriven delivery that fails again gets the whole retry policy again", async () => {
    const bus = new LocalBus({ maxAttempts: 3, baseDelayMs: 10 });
    const consumer = recorder(Number.POSITIVE_INFINITY);
    bus.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    await bus.publish([entry()]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(consumer.calls).toHaveLength(3);
    bus.redrive();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(consumer.calls.map((c) => c.delivery.attempt)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(bus.deadLetters()[0]?.attempts).toBe(3);
  });
});

describe("LocalBus persistence", () => {
  test("deliveries are on disk before publish returns and are delivered by the next bus on that folder", async () => {
    const dir = tempDir();
    const first = new LocalBus({ dir });
    // Subscribed but closed at once: as if the process died right after publishing.
    first.subscribe({ name: "x.y", pattern: onRegistered, handler: recorder().handler });
    await first.close();
    const event = registered();
    await first.publish([entry(event)]);
    expect(readdirSync(join(dir, "pending"))).toHaveLength(1);
    expect(listDeliveries(join(dir, "pending"))).toEqual([expect.objectContaining({ subscriber: "x.y", attempts: 0 })]);

    const second = new LocalBus({ dir });
    const consumer = recorder();
    second.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    expect(second.recover()).toBe(1);
    await second.drain();
    expect(consumer.calls.map((c) => c.event)).toEqual([event]);
    expect(readdirSync(join(dir, "pending"))).toEqual([]);
  });

  test("a delivery waiting for a retry when the bus closes keeps its attempts and is retried after restart", async () => {
    const dir = tempDir();
    const first = new LocalBus({ dir, baseDelayMs: 60_000, maxAttempts: 3 });
    const failing = recorder(Number.POSITIVE_INFINITY);
    first.subscribe({ name: "x.y", pattern: onRegistered, handler: failing.handler });
    await first.publish([entry()]);
    await vi.waitFor(() => expect(first.pending()[0]?.attempts).toBe(1));
    await first.close(); // the retry timer (a minute away) is dropped; the file stays
    expect(listDeliveries(join(dir, "pending"))).toEqual([expect.objectContaining({ attempts: 1, lastError: "Error: store unavailable" })]);

    const second = new LocalBus({ dir, baseDelayMs: 1, maxAttempts: 3 });
    const consumer = recorder();
    second.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    second.recover();
    await second.drain();
    expect(consumer.calls.map((c) => c.delivery.attempt)).toEqual([2]);
    expect(second.pending()).toEqual([]);
  });

  test("dead letters are kept on disk, listed in time order, and redriven by a later bus", async () => {
    const dir = tempDir();
    const first = new LocalBus({ dir, maxAttempts: 1 });
    first.subscribe({ name: "x.y", pattern: onRegistered, handler: recorder(Number.POSITIVE_INFINITY).handler });
    await first.publish([entry()]);
    await first.drain();
    await first.close();
    const files = readdirSync(join(dir, "dlq"));
    expect(files).toHaveLength(1);
    const stored = JSON.parse(readFileSync(join(dir, "dlq", files[0] as string), "utf8")) as Delivery;
    expect(stored).toMatchObject({ attempts: 1, deadLetteredAt: expect.any(String) });

    const second = new LocalBus({ dir });
    const consumer = recorder();
    second.subscribe({ name: "x.y", pattern: onRegistered, handler: consumer.handler });
    expect(second.recover()).toBe(0);
    expect(second.deadLetters().map((d) => d.id)).toEqual([stored.id]);
    expect(second.redrive()).toBe(1);
    await second.drain();
    expect(consumer.calls).toHaveLength(1);
    expect(readdirSync(join(dir, "dlq"))).toEqual([]);
    expect(readdirSync(join(dir, "pending"))).toEqual([]);
  });

  test("listDeliveries of a missing folder is empty", () => {
    expect(listDeliveries(join(tempDir(), "nope"))).toEqual([]);
  });

  test("recover does not deliver again what is already in flight", async () => {
    const dir = tempDir();
    const bus = new LocalBus({ dir });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    bus.subscribe({
      name: "x.y",
      pattern: onRegistered,
      handler: async () => {
        calls++;
        await gate;
      },
    });
    await bus.publish([entry()]);
    await vi.waitFor(() => expect(calls).toBe(1));
    // Start-up calls recover() after the seeds, whose own events may be mid-delivery.
    expect(bus.recover()).toBe(0);
    release();
    await bus.drain();
    expect(calls).toBe(1);
    expect(bus.pending()).toEqual([]);
  });

  test("close waits for deliveries in flight and stops further deliveries", async () => {
    const bus = new LocalBus({ dir: tempDir(), baseDelayMs: 1 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seen: number[] = [];
    bus.subscribe({
      name: "x.y",
      pattern: onRegistered,
      handler: async (_event, delivery) => {
        seen.push(delivery.attempt);
        await gate;
        throw new Error("fails after close");
      },
    });
    await bus.publish([entry()]);
    await vi.waitFor(() => expect(seen).toEqual([1]));
    let closed = false;
    const closing = bus.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(closed).toBe(false);
    release();
    await closing;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toEqual([1]); // no retry after close
    expect(bus.pending()).toEqual([expect.objectContaining({ attempts: 1 })]);
    await expect(bus.drain()).resolves.toBeUndefined();
  });
});
