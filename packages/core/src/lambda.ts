import { log } from "./log";
import type { EventHandler } from "./service";

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

/** Lambda wiring for a scheduled job. */
export function scheduledHandler(name: string, job: () => Promise<() => Promise<unknown>>) {
  return async (): Promise<unknown> => {
    const result = await (await job())();
    log("info", "scheduled job finished", { job: name, result });
    return result;
  };
}
