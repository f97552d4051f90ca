import { type SQL, sql } from "drizzle-orm";
import type { Queryable } from "../db/index";
import type { InboxTable } from "./tables";

type Tx = Parameters<Parameters<Queryable["transaction"]>[0]>[0];

/**
 * Applies a consumer's effect at most once per event: the inbox row and the effect commit in
 * one transaction; a repeat (same subscriber, same `detail.id`) finds the row and does nothing.
 * Concurrent duplicates serialize on the inbox primary key.
 */
export async function consumeOnce(
  db: Queryable,
  inbox: InboxTable,
  subscriber: string,
  eventId: string,
  effect: (tx: Tx) => Promise<void>,
): Promise<"applied" | "duplicate"> {
  return db.transaction(async (tx) => {
    const inserted = await tx.insert(inbox).values({ subscriber, eventId }).onConflictDoNothing().returning({ eventId: inbox.eventId });
    if (inserted.length === 0) return "duplicate";
    await effect(tx);
    return "applied";
  });
}

/** The inbox half of a consumer whose effect is a single statement (see `inboxClaim`). */
export interface InboxClaim {
  /** A data-modifying CTE recording the event for the subscriber; it records nothing on a repeat. */
  cte: SQL;
  /** Holds only in the statement that recorded it: the effect's changes are made `where` this. */
  first: SQL;
}

/**
 * `consumeOnce` for an effect that is one statement: the statement carries `cte` and makes its
 * changes only where `first` holds, so the inbox row and the effect commit together in one round
 * trip instead of begin, inbox insert, effect and commit, four, each waiting on a busy database.
 * A concurrent duplicate waits on the inbox key, then finds it taken and changes nothing.
 */
export function inboxClaim(inbox: InboxTable, subscriber: string, eventId: string): InboxClaim {
  const name = sql.identifier("inbox_claim");
  return {
    cte: sql`${name} as (insert into ${inbox} ("subscriber", "event_id") values (${subscriber}, ${eventId}::uuid) on conflict do nothing returning 1)`,
    first: sql`exists (select 1 from ${name})`,
  };
}
