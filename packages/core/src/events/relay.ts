import { inArray, sql } from "drizzle-orm";
import type { Queryable } from "../db/index";
import { describeError, log } from "../log";
import type { EventBus } from "./bus";
import type { EventEnvelope } from "./envelope";
import type { OutboxTable } from "./tables";

export interface RelayTarget {
  outbox: OutboxTable;
  source: string;
  bus: EventBus;
}

/**
 * Publishes events that just committed, then marks them sent (one round trip). Never throws:
 * the change is committed whatever happens here, and what is not marked sent is published
 * later by the sweeper.
 */
export async function relayEvents(db: Queryable, target: RelayTarget, events: EventEnvelope[]): Promise<{ published: number; failed: number }> {
  if (events.length === 0) return { published: 0, failed: 0 };
  try {
    const result = await target.bus.publish(events.map((detail) => ({ source: target.source, detailType: detail.type, detail })));
    const failedIds = new Set(result.failed.map((f) => f.id));
    const sent = events.map((e) => e.id).filter((id) => !failedIds.has(id));
    if (sent.length > 0) {
      await db.update(target.outbox).set({ publishedAt: sql`now()` }).where(inArray(target.outbox.id, sent));
    }
    if (result.failed.length > 0) {
      log("warn", "events not published; the sweeper will retry", { source: target.source, failed: result.failed });
    }
    return { published: sent.length, failed: result.failed.length };
  } catch (error) {
    log("warn", "relay failed; the sweeper will retry", { source: target.source, ...describeError(error) });
    return { published: 0, failed: events.length };
  }
}
