import type { ServiceContext } from "./context";
import { type EventType, eventCatalog, eventTypes } from "./events/catalog";
import { type EventEnvelope, parseEvent, type TypedEnvelope } from "./events/envelope";
import type { EventPattern } from "./events/pattern";
import { pruneEvents } from "./events/retention";
import { sweepOutbox } from "./events/sweeper";
import { APP, eventSource, type Schedule } from "./manifest";

export interface DeliveryInfo {
  /** 1 on first delivery. */
  attempt: number;
}

/** What a bus hands a subscriber: the event's `detail` and the delivery attempt. */
export type EventHandler = (event: EventEnvelope, delivery: DeliveryInfo) => Promise<void>;

/** A delivery as a subscription's handler sees it: which subscription (its inbox key) and which attempt. */
export interface Delivery extends DeliveryInfo {
  subscription: string;
}

/**
 * A subscription: events matching `pattern` go to `handle`. Declared with `on` (catalog types,
 * parsed and checked before `handle` sees them) or with a raw `pattern` (the handler gets the
 * envelope as delivered and reads it itself).
 */
export interface Subscription<C extends ServiceContext = ServiceContext> {
  kind: "subscription";
  description: string;
  pattern: EventPattern;
  handle(context: C, event: EventEnvelope, delivery: Delivery): Promise<void>;
}

export interface Cron<C extends ServiceContext = ServiceContext> {
  kind: "cron";
  description: string;
  schedule: Schedule;
  run(context: C): Promise<unknown>;
}

export type Job<C extends ServiceContext = ServiceContext> = Subscription<C> | Cron<C>;
/** A service's background jobs by name (kebab-case: the name is also its function's and its inbox key). */
export type Jobs<C extends ServiceContext = ServiceContext> = Record<string, Job<C>>;

/** A job as the deployment sees it: data only (the plan and the rules are made from this). */
export type JobDescriptor =
  | { name: string; kind: "subscription"; description: string; pattern: EventPattern }
  | { name: string; kind: "cron"; description: string; schedule: Schedule };

/** The EventBridge pattern of catalog types: their producers' sources and their names. */
export function patternOf(types: readonly EventType[]): EventPattern {
  const sources = [...new Set(types.map((type) => eventSource(APP, eventCatalog[type].service)))];
  return { source: sources, "detail-type": [...types] };
}

export function subscribe<C extends ServiceContext, const T extends EventType>(declaration: {
  description: string;
  on: readonly T[];
  handle(context: C, event: TypedEnvelope<T>, delivery: Delivery): Promise<void>;
}): Subscription<C>;
export function subscribe<C extends ServiceContext>(declaration: {
  description: string;
  pattern: EventPattern;
  handle(context: C, event: EventEnvelope, delivery: Delivery): Promise<void>;
}): Subscription<C>;
export function subscribe<C extends ServiceContext>(declaration: {
  description: string;
  on?: readonly EventType[];
  pattern?: EventPattern;
  handle(context: C, event: EventEnvelope, delivery: Delivery): Promise<void>;
}): Subscription<C> {
  const { on, handle, description } = declaration;
  if (!on) return { kind: "subscription", description, pattern: declaration.pattern as EventPattern, handle };
  return {
    kind: "subscription",
    description,
    pattern: patternOf(on),
    // An envelope that does not parse, or a version this code does not know, throws: the bus
    // retries and then dead-letters it rather than the handler dropping it silently.
    handle: async (context, event, delivery) => handle(context, parseEvent(event, ...on), delivery),
  };
}

/** The bus-facing handler of a subscription: what the local bus and the Lambda wiring call. */
export function eventHandler<C extends ServiceContext>(name: string, subscription: Subscription<C>, context: C): EventHandler {
  return async (event, delivery) => subscription.handle(context, event, { ...delivery, subscription: name });
}

export function cron<C extends ServiceContext>(declaration: { description: string; schedule: Schedule; run(context: C): Promise<unknown> }): Cron<C> {
  return { kind: "cron", ...declaration };
}

/** Publishes outbox rows left behind; added by the kernel to every service that publishes events. */
export const outboxSweeper: Cron = /* @__PURE__ */ cron({
  description: "Publishes outbox rows a crashed request left behind",
  schedule: "rate(1 minute)",
  run: async (context) => sweepOutbox((await context.database()).db, { outbox: context.events.outbox, bus: context.bus }),
});

/**
 * Deletes event rows past their retention (events/retention.ts says how long and why); added by
 * the kernel beside the sweeper, so no service's outbox or inbox grows without bound.
 */
export const eventRetentionJob: Cron = /* @__PURE__ */ cron({
  description: "Deletes published outbox rows older than 7 days and inbox rows older than 30 days",
  schedule: "rate(1 hour)",
  run: async (context) => pruneEvents((await context.database()).db, { outbox: context.events.outbox, inbox: context.events.inbox }),
});

/** Names the kernel adds to a publishing service's jobs; a service cannot declare its own under them. */
const kernelJobNames = ["outbox-sweeper", "event-retention"] as const;

/**
 * A service's jobs, each declared once beside its code; the local runtime, the Lambda entry
 * points and the deployment all read this. A service that owns events in the catalog also gets
 * the kernel's `outbox-sweeper` and `event-retention`.
 */
export function defineJobs<C extends ServiceContext, const J extends Jobs<C> = Record<never, never>>(
  service: string,
  jobs: J = {} as J,
): J & { "outbox-sweeper"?: Cron<C>; "event-retention"?: Cron<C> } {
  for (const name of Object.keys(jobs)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`${service}: job name "${name}" must be kebab-case`);
  }
  const publishes = eventTypes.some((type) => eventCatalog[type].service === service);
  if (!publishes) return jobs;
  for (const name of kernelJobNames) {
    if (name in jobs) throw new Error(`${service}: "${name}" is the kernel's job name`);
  }
  return { ...jobs, "outbox-sweeper": outboxSweeper as Cron<C>, "event-retention": eventRetentionJob as Cron<C> };
}

export function describeJobs(jobs: Jobs): JobDescriptor[] {
  return Object.entries(jobs).map(([name, job]) =>
    job.kind === "subscription"
      ? { name, kind: job.kind, description: job.description, pattern: job.pattern }
      : { name, kind: job.kind, description: job.description, schedule: job.schedule },
  );
}
