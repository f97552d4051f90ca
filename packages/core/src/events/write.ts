import { type SQL, type SQLWrapper, sql, type Table } from "drizzle-orm";
import { type Queryable, rowsOf } from "../db/index";
import { mapRow } from "../db/rows";
import type { EventEnvelope } from "./envelope";
import type { OutboxTable } from "./tables";

/** The rows the change of a commit returned: the table its `also` statements select from. */
export const changed = sql.identifier("change");

export interface ChangeWithEvents<T extends Table> {
  outbox: OutboxTable;
  /** `<app>.<service>` */
  source: string;
  /** The table `change` returns rows of. */
  table: T;
  /** An insert/update/delete with `.returning()`; available to `also` as the CTE `changed`. */
  change: SQLWrapper;
  /** More data-modifying statements in the same statement; they may select from `changed`. */
  also?: SQL[];
  /** Recorded in the outbox only if `change` returned at least one row. */
  events: EventEnvelope[];
}

/** An insert of `events` into the outbox, written only when `when` (SQL over the statement's CTEs) holds. */
export function outboxInsert(outbox: OutboxTable, source: string, events: EventEnvelope[], when: SQL = sql`true`): SQL {
  const values = sql.join(
    events.map((event) => sql`(${event.id}::uuid, ${source}, ${event.type}, ${JSON.stringify(event)}::jsonb)`),
    sql`, `,
  );
  return sql`insert into ${outbox} ("id", "source", "type", "detail") select * from (values ${values}) as v where ${when}`;
}

/**
 * Commits a change and its events atomically in ONE statement (data-modifying CTEs), so a
 * write route costs one round trip instead of begin/insert/insert/commit. The events are
 * written only if the change affected a row, which makes conditional updates
 * (`where status = 'pending'`) safe to combine with their events.
 */
export async function commitWithEvents<T extends Table>(db: Queryable, input: ChangeWithEvents<T>): Promise<T["$inferSelect"][]> {
  const parts: SQL[] = [sql`${changed} as (${input.change.getSQL()})`];
  for (const [index, statement] of (input.also ?? []).entries()) parts.push(sql`${sql.identifier(`also_${index}`)} as (${statement})`);
  if (input.events.length > 0) {
    parts.push(sql`"events" as (${outboxInsert(input.outbox, input.source, input.events, sql`exists (select 1 from ${changed})`)})`);
  }
  const result = await db.execute(sql`with ${sql.join(parts, sql`, `)} select * from ${changed}`);
  return rowsOf(result).map((row) => mapRow(input.table, row));
}
