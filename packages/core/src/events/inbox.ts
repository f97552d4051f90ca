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
