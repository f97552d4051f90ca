import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type BusEntry,
  type BusEvent,
  describeError,
  type EventBus,
  type EventHandler,
  type EventPattern,
  log,
  matchesPattern,
  type PublishResult,
  uuidv7,
} from "@enclave/core";
import { RecentEvents } from "./recent-events";

export type { BusEvent } from "@enclave/core";

export interface Delivery {
  id: string;
  subscriber: string;
  event: BusEvent;
  /** Failed attempts so far. */
  attempts: number;
  lastError?: string;
  deadLetteredAt?: string;
}

export interface LocalSubscription {
  /** `<service>.<subscription>` */
  name: string;
  pattern: EventPattern;
  handler: EventHandler;
}

export interface LocalBusOptions {
  /** Where deliveries are kept until they succeed (pending/) or give up (dlq/); memory only when unset. */
  dir?: string;
  /** Attempts before an event is dead-lettered (EventBridge's target retry policy). */
  maxAttempts?: number;
  /** First retry delay; doubles each attempt, with jitter. */
  baseDelayMs?: number;
  /** How many of the last events (with their deliveries' states) the events page can show. */
  recentEvents?: number;
}

/**
 * The local stand-in for EventBridge: the same envelope, the same pattern semantics, at-least-
 * once delivery to every matching subscriber, retries with exponential backoff, and a dead-
 * letter list that can be redriven. Deliveries are written to disk before publish returns, so
 * a crash or Ctrl-C loses nothing: they are delivered on the next start.
 */
export class LocalBus implements EventBus {
  readonly subscriptions: LocalSubscription[] = [];
  /** What the events page shows; memory only, bounded, and never consulted for delivery. */
  readonly recent: RecentEvents;
  private readonly memoryPending = new Map<string, Delivery>();
  private readonly memoryDlq = new Map<string, Delivery>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Ids of deliveries being delivered right now (recover must not start them twice). */
  private readonly delivering = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;

  constructor(private readonly options: LocalBusOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.recent = new RecentEvents(options.recentEvents);
    if (options.dir) {
      mkdirSync(join(options.dir, "pending"), { recursive: true });
      mkdirSync(join(options.dir, "dlq"), { recursive: true });
    }
  }

  subscribe(subscription: LocalSubscription): void {
    this.subscriptions.push(subscription);
  }

  async publish(entries: BusEntry[]): Promise<PublishResult> {
    const failed: PublishResult["failed"] = [];
    for (const entry of entries) {
      // EventBridge refuses an entry whose Detail is not a JSON object; so does this bus, rather
      // than deliver something no subscriber can read.
      const detail: unknown = entry.detail;
      if (detail === null || typeof detail !== "object" || Array.isArray(detail)) {
        failed.push({ id: "", error: "MalformedDetail: detail must be a JSON object" });
        continue;
      }
      const event: BusEvent = {
        version: "0",
        id: uuidv7(),
        "detail-type": entry.detailType,
        source: entry.source,
        account: "000000000000",
        time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        region: "local",
        resources: [],
        detail: entry.detail,
      };
      this.recent.published(event);
      for (const subscription of this.subscriptions) {
        if (!matchesPattern(subscription.pattern, event as unknown as Record<string, unknown>)) continue;
        const delivery: Delivery = { id: `${event.id}.${subscription.name}`, subscriber: subscription.name, event, attempts: 0 };
        this.save("pending", delivery);
        this.recent.track(delivery, { status: "pending" });
        this.schedule(delivery, 0);
      }
    }
    return { failed };
  }

  /**
   * Delivers what a previous run left pending (call once subscriptions are registered). What
   * this bus already has scheduled or in flight (events published since start) is left alone.
   */
  recover(): number {
    const pending = this.list("pending").filter((delivery) => !this.timers.has(delivery.id) && !this.delivering.has(delivery.id));
    for (const delivery of pending) {
      this.recent.track(delivery, { status: delivery.attempts > 0 ? "retrying" : "pending", nextAttemptAt: new Date().toISOString() });
      this.schedule(delivery, 0);
    }
    return pending.length;
  }

  deadLetters(): Delivery[] {
    return this.list("dlq");
  }

  pending(): Delivery[] {
    return this.list("pending");
  }

  /** Sends dead-lettered deliveries (all, or the given ids) through their subscriber again. */
  redrive(ids?: string[]): number {
    const chosen = this.deadLetters().filter((d) => !ids || ids.includes(d.id));
    for (const delivery of chosen) {
      this.remove("dlq", delivery.id);
      const fresh: Delivery = { id: delivery.id, subscriber: delivery.subscriber, event: delivery.event, attempts: 0 };
      this.save("pending", fresh);
      this.recent.track(fresh, { status: "pending" }, { redriven: true });
      this.schedule(fresh, 0);
    }
    return chosen.length;
  }

  /** Resolves when nothing is in flight or waiting for a retry. */
  drain(): Promise<void> {
    if (this.timers.size === 0 && this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops delivering; waits for deliveries in flight. Anything not delivered stays pending on disk. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
    this.notifyIdle();
  }

  private schedule(delivery: Delivery, delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(delivery.id));
    const timer = setTimeout(() => {
      this.timers.delete(delivery.id);
      this.delivering.add(delivery.id);
      const run = this.deliver(delivery).finally(() => {
        this.delivering.delete(delivery.id);
        this.inFlight.delete(run);
        this.notifyIdle();
      });
      this.inFlight.add(run);
    }, delayMs);
    this.timers.set(delivery.id, timer);
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const subscription = this.subscriptions.find((s) => s.name === delivery.subscriber);
    try {
      if (!subscription) throw new Error(`no subscriber named ${delivery.subscriber}`);
      await subscription.handler(delivery.event.detail, { attempt: delivery.attempts + 1 });
      this.remove("pending", delivery.id);
      this.recent.track(delivery, { status: "delivered", attempts: delivery.attempts + 1, deliveredAt: new Date().toISOString() });
    } catch (error) {
      delivery.attempts += 1;
      // Kept in the dead-letter file, shown on the events page and logged: a failed query's
      // parameters (the event's data) are left out, as everywhere else.
      const { error: name, message } = describeError(error);
      delivery.lastError = message === undefined ? String(name) : `${name}: ${message}`;
      if (delivery.attempts >= this.maxAttempts) {
        delivery.deadLetteredAt = new Date().toISOString();
        this.remove("pending", delivery.id);
        this.save("dlq", delivery);
        this.recent.track(delivery, { status: "dead", deadLetteredAt: delivery.deadLetteredAt });
        log("error", "event dead-lettered", {
          subscriber: delivery.subscriber,
          eventId: delivery.event.detail.id,
          type: delivery.event["detail-type"],
          attempts: delivery.attempts,
          error: delivery.lastError,
        });
        return;
      }
      this.save("pending", delivery);
      const delay = this.baseDelayMs * 2 ** (delivery.attempts - 1) * (0.8 + Math.random() * 0.4);
      this.recent.track(delivery, { status: "retrying", nextAttemptAt: new Date(Date.now() + delay).toISOString() });
      log("warn", "event delivery failed; retrying", {
        subscriber: delivery.subscriber,
        eventId: delivery.event.detail.id,
        attempt: delivery.attempts,
        retryInMs: Math.round(delay),
        error: delivery.lastError,
      });
      this.schedule(delivery, delay);
    }
  }

  private notifyIdle(): void {
    if (this.timers.size > 0 || this.inFlight.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private save(box: "pending" | "dlq", delivery: Delivery): void {
    if (!this.options.dir) {
      (box === "pending" ? this.memoryPending : this.memoryDlq).set(delivery.id, { ...delivery });
      return;
    }
    const file = join(this.options.dir, box, `${delivery.id}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(delivery));
    renameSync(`${file}.tmp`, file);
  }

  private remove(box: "pending" | "dlq", id: string): void {
    if (!this.options.dir) {
      (box === "pending" ? this.memoryPending : this.memoryDlq).delete(id);
      return;
    }
    rmSync(join(this.options.dir, box, `${id}.json`), { force: true });
  }

  private list(box: "pending" | "dlq"): Delivery[] {
    if (!this.options.dir) return [...(box === "pending" ? this.memoryPending : this.memoryDlq).values()];
    return listDeliveries(join(this.options.dir, box));
  }
}

/** Reads a folder of deliveries (the CLI uses this to show the dead-letter list without a running server). */
export function listDeliveries(dir: string): Delivery[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
  return names.map((name) => JSON.parse(readFileSync(join(dir, name), "utf8")) as Delivery).sort((a, b) => a.event.time.localeCompare(b.event.time));
}
