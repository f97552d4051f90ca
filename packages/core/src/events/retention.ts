import { type SQL, sql } from "drizzle-orm";
import { type Queryable, rowsOf } from "../db/index";
import type { InboxTable, OutboxTable } from "./tables";

const DAY_MS = 24 * 60 * 60_000;

/**
 * How long the event tables keep a row. Both would otherwise grow with every event forever.
 *
 * Inbox: a row is what makes a redelivery a no-op, so it must outlive every way the same event
 * can come back. EventBridge retries a delivery for up to 24 hours; a delivery that still fails
 * goes to the subscriber's dead-letter queue, kept there 14 days (the SQS maximum, infra/sizing.ts
 * `deadLetterRetentionSeconds`) and redriven whenever an operator chooses within that window. The
 * latest a duplicate can arrive is therefore 24 h + 14 days after the first delivery; 30 days
 * leaves a margin of more than two weeks over that. Shortening it below 15 days would let a
 * redriven event be applied twice.
 *
 * Outbox: a published row has done its work (the bus has the event, and the sweeper only reads
 * unpublished rows); it is kept a week only so an operator can inspect what was sent. An
 * unpublished row is never deleted, whatever its age: it is an event not yet delivered.
 */
export const eventRetention = {
  inboxMs: 30 * DAY_MS,
  publishedOutboxMs: 7 * DAY_MS,
  /**
   * Rows per delete statement: small enough that one statement holds its locks and its WAL
   * briefly and never blocks the relay or a consumer for long.
   */
  batchSize: 5_000,
  /**
   * Statements per table per run: a backlog (a first run on a full table) is worked off over
   * several runs instead of one run outliving its function's timeout.
   */
  maxBatches: 20,
} as const;

export interface RetentionTables {
  outbox: OutboxTable;
  inbox?: InboxTable | undefined;
}

export interface RetentionOptions {
  batchSize?: number;
  maxBatches?: number;
}

export interface RetentionResult {
  outbox: number;
  inbox: number;
  /** True when a table reached the per-run cap: rows past the window are left for the next run. */
  capped: boolean;
}

/**
 * Deletes published outbox rows and inbox rows past their windows, in bounded batches, oldest
 * first. Safe to run while events flow and while another run overlaps it.
 */
export async function pruneEvents(db: Queryable, tables: RetentionTables, options: RetentionOptions = {}): Promise<RetentionResult> {
  const batchSize = options.batchSize ?? eventRetention.batchSize;
  const maxBatches = options.maxBatches ?? eventRetention.maxBatches;
  const { outbox, inbox } = tables;
  const cutoff = (ms: number) => sql`now() - ${`${ms} milliseconds`}::interval`;

  const drain = async (batch: () => SQL): Promise<{ deleted: number; capped: boolean }> => {
    let deleted = 0;
    for (let round = 0; round < maxBatches; round++) {
      const count = rowsOf(await db.execute(batch())).length;
      deleted += count;
      if (count < batchSize) return { deleted, capped: false };
    }
    return { deleted, capped: true };
  };

  // Each batch is picked through the `published_at` / `processed_at` index (the planner would
  // otherwise hash-join the whole table against the batch) and deleted by row identity: the
  // outbox by its primary key, the inbox by row address, since its key has two columns. Rows of
  // either table are never updated once past their window, and the outer condition is checked
  // again, so a row that changed in between is simply left alone.
  // `published_at is not null` is implied by the comparison; it is spelled out so the planner
  // matches the partial index, and so no reading of this query can ever reach an unpublished row.
  const outboxOld = sql`${outbox.publishedAt} is not null and ${outbox.publishedAt} < ${cutoff(eventRetention.publishedOutboxMs)}`;
  const outboxResult = await drain(
    () => sql`delete from ${outbox} where ${outboxOld} and ${outbox.id} = any(array(
      select ${outbox.id} from ${outbox} where ${outboxOld} order by ${outbox.publishedAt} limit ${batchSize})) returning 1`,
  );
  const inboxResult = inbox
    ? await drain(() => {
        const inboxOld = sql`${inbox.processedAt} < ${cutoff(eventRetention.inboxMs)}`;
        return sql`delete from ${inbox} where ${inboxOld} and ctid = any(array(
          select ctid from ${inbox} where ${inboxOld} order by ${inbox.processedAt} limit ${batchSize})) returning 1`;
      })
    : { deleted: 0, capped: false };
  return { outbox: outboxResult.deleted, inbox: inboxResult.deleted, capped: outboxResult.capped || inboxResult.capped };
}
