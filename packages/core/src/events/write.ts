import { type SQL, type SQLWrapper, sql, type Table } from "drizzle-orm";
import { type Queryable, rowsOf } from "../db/index";
import { mapRow } from "../db/rows";
import type { EventEnvelope } from "./envelope";
import type { OutboxTable } from "./tables";

export interface ChangeWithEvents<T extends Table> {
  outbox: OutboxTable;
  /** `<app>.<service>` */
  source: string;
  /** The table `change` returns rows of. */
  table: T;
  /** An insert/update/delete with `.returning()`; available to `also` as the CTE `change`. */
  change: SQLWrapper;
  /** More data-modifying statements in the same statement; they may select from `change`. */
  also?: SQL[];
  /** Recorded in the outbox only if `change` returned at least one row. */
  events: EventEnvelope[];
}

/**
 * Commits a change and its events atomically in ONE statement (data-modifying CTEs), so a
 * write route costs one round trip instead of begin/insert/insert/commit. The events are
 * written only if the change affected a row, which makes conditional updates
 * (`where status = 'pending'`) safe to combine with their events.
 */
export async function commitWithEvents<T extends Table>(db: Queryable, input: ChangeWithEvents<T>): Promise<T["$inferSelect"][]> {
  const parts: SQL[] = [sql`"change" as (${input.change.getSQL()})`];
  for (const [index, statement] of (input.also ?? []).entries()) parts.push(sql`${sql.raw(`"also_${index}"`)} as (${statement})`);
  if (input.events.length > 0) {
    const values = sql.join(
      input.events.map((event) => sql`(${event.id}::uuid, ${input.source}, ${event.type}, ${JSON.stringify(event)}::jsonb)`),
      sql`, `,
    );
    parts.push(
      sql`"events" as (insert into ${input.outbox} ("id", "source", "type", "detail") select * from (values ${values}) as v where exists (select 1 from "change"))`,
    );
  }
  const result = await db.execute(sql`with ${sql.join(parts, sql`, `)} select * from "change"`);
  return rowsOf(result).map((row) => mapRow(input.table, row));
}

/** Inserts events into the outbox inside an open transaction (for multi-statement flows). */
export async function recordEvents(tx: Queryable, outbox: OutboxTable, source: string, events: EventEnvelope[]): Promise<void> {
  if (events.length === 0) return;
  await tx.insert(outbox).values(events.map((event) => ({ id: event.id, source, type: event.type, detail: event })));
}
