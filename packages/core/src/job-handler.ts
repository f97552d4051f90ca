import { ConfigError } from "./config";
import type { ServiceContext } from "./context";
import { type EventHandler, eventHandler, type Jobs } from "./jobs";
import { log } from "./log";

/** An EventBridge event as delivered to a Lambda target. */
export interface EventBridgeEvent {
  id: string;
  "detail-type": string;
  source: string;
  time: string;
  detail: unknown;
  "replay-name"?: string;
}

/**
 * Lambda wiring for a subscriber. It throws when the handler throws (or the envelope cannot be
 * parsed), so the EventBridge target's retry policy retries it and then dead-letters it.
 */
export function eventBridgeHandler(subscriber: string, handler: () => Promise<EventHandler>) {
  return async (event: EventBridgeEvent): Promise<void> => {
    const started = performance.now();
    const run = await handler();
    const detail = event.detail as { id?: unknown };
    try {
      await run(event.detail as never, { attempt: 1 });
      log("info", "event handled", { subscriber, eventId: detail?.id, type: event["detail-type"], ms: Math.round(performance.now() - started) });
    } catch (error) {
      log("error", "event handler failed", { subscriber, eventId: detail?.id, type: event["detail-type"], error: (error as Error).message });
      throw error;
    }
  };
}

/** Lambda wiring for a cron. */
export function scheduledHandler(name: string, job: () => Promise<() => Promise<unknown>>) {
  return async (): Promise<unknown> => {
    const result = await (await job())();
    log("info", "scheduled job finished", { job: name, result });
    return result;
  };
}

export type JobLambda = ((event: EventBridgeEvent) => Promise<void>) | (() => Promise<unknown>);

/**
 * The Lambda handler of each of a service's jobs, by name: a subscription's takes the EventBridge
 * delivery, a cron's the scheduler's invocation. The context is built on first use.
 */
export function jobLambdas<C extends ServiceContext, J extends Jobs<C>>(service: string, jobs: J, context: () => Promise<C>): { [N in keyof J]: JobLambda } {
  const lambdas: Record<string, JobLambda> = {};
  for (const [name, job] of Object.entries(jobs)) {
    lambdas[name] =
      job.kind === "subscription"
        ? eventBridgeHandler(`${service}.${name}`, async () => eventHandler(name, job, await context()))
        : scheduledHandler(`${service}.${name}`, async () => {
            const ctx = await context();
            return () => job.run(ctx);
          });
  }
  return lambdas as { [N in keyof J]: JobLambda };
}

/**
 * The one job a deployed job function runs: the one JOB_NAME names (the deployment sets it per
 * function). A missing or unknown name fails every invocation with a message naming the service
 * and the variable, so a wiring mistake dead-letters visibly instead of doing the wrong job.
 */
export function selectJob(service: string, lambdas: Record<string, JobLambda>, name: () => Promise<string | undefined>) {
  return async (event: EventBridgeEvent): Promise<unknown> => {
    const job = await name();
    const lambda = job === undefined ? undefined : Object.hasOwn(lambdas, job) ? lambdas[job] : undefined;
    if (!lambda) {
      const known = Object.keys(lambdas).join(", ");
      throw new ConfigError([job === undefined ? `${service}: JOB_NAME is required (one of ${known})` : `${service}: JOB_NAME "${job}" is none of ${known}`]);
    }
    return lambda(event);
  };
}
