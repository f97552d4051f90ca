import { and, asc, inArray, isNull, lt, sql } from "drizzle-orm";
import type { Queryable } from "../db/index";
import { describeError, log } from "../log";
import type { PublishResult } from "./bus";
import type { RelayTarget } from "./relay";

export interface SweepOptions {
  /** Rows younger than this are left to the relay of the request that wrote them. */
  graceMs?: number;
  batchSize?: number;
}

/**
 * Publishes outbox rows left behind (a process that died between commit and publish, or a bus
 * that was down). Rows are locked with SKIP LOCKED so overlapping sweeps share the work.
 */
export async function sweepOutbox(
  db: Queryable,
  target: Pick<RelayTarget, "outbox" | "bus">,
  options: SweepOptions = {},
): Promise<{ published: number; failed: number }> {
  const graceMs = options.graceMs ?? 5_000;
  const batchSize = options.batchSize ?? 100;
  return db.transaction(async (tx) => {
    const rows = await tx
      .select()
      .from(target.outbox)
      .where(and(isNull(target.outbox.publishedAt), lt(target.outbox.createdAt, sql`now() - ${`${graceMs} milliseconds`}::interval`)))
      // Rows the bus keeps refusing go last, so they never crowd fresh events out of a batch.
      .orderBy(asc(target.outbox.attempts), asc(target.outbox.createdAt))
      .limit(batchSize)
      .for("update", { skipLocked: true });
    if (rows.length === 0) return { published: 0, failed: 0 };
    let result: PublishResult;
    try {
      result = await target.bus.publish(rows.map((row) => ({ source: row.source, detailType: row.type, detail: row.detail })));
    } catch (error) {
      // A bus that cannot be reached is a failed attempt for every row, recorded like any other.
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      log("warn", "outbox sweep could not publish", { rows: rows.length, ...describeError(error) });
      result = { failed: rows.map((row) => ({ id: row.id, error: reason })) };
    }
    const failed = new Map(result.failed.map((f) => [f.id, f.error]));
    const sent = rows.filter((row) => !failed.has(row.id)).map((row) => row.id);
    if (sent.length > 0) await tx.update(target.outbox).set({ publishedAt: sql`now()` }).where(inArray(target.outbox.id, sent));
    // One update per distinct error (usually one), not one per row.
    const byError = new Map<string, string[]>();
    for (const [id, error] of failed) {
      if (rows.some((row) => row.id === id)) byError.set(error, [...(byError.get(error) ?? []), id]);
    }
    for (const [error, ids] of byError) {
      await tx
        .update(target.outbox)
        .set({ attempts: sql`${target.outbox.attempts} + 1`, lastError: error.slice(0, 500) })
        .where(inArray(target.outbox.id, ids));
    }
    return { published: sent.length, failed: rows.length - sent.length };
  });
}
