import type { SQL, Table } from "drizzle-orm";
import type { Queryable } from "../db/index";
import type { EventBus } from "./bus";
import { eventCatalog } from "./catalog";
import type { EventEnvelope } from "./envelope";
import { relayEvents } from "./relay";
import type { InboxTable, OutboxTable } from "./tables";
import { type ChangeWithEvents, commitWithEvents, outboxInsert } from "./write";

export { changed } from "./write";

/**
 * A service's events, bound once to its source, its outbox and the bus: every write that emits
 * events goes through `commit`, which records them with the change and publishes them after the
 * commit, so no write can forget to publish and no event outlives a rolled-back change.
 */
export interface ServiceEvents {
  /** `<app>.<service>` */
  source: string;
  outbox: OutboxTable;
  /** Its inbox, where it has subscribers: bound here so the kernel's retention reaches it. */
  inbox?: InboxTable | undefined;
  /**
   * The change, the `also` statements and the events in ONE statement, then the events are
   * published (the sweeper publishes whatever this process could not). Returns the change's rows.
   */
  commit<T extends Table>(db: Queryable, change: Omit<ChangeWithEvents<T>, "outbox" | "source">): Promise<T["$inferSelect"][]>;
  /**
   * For a statement of the caller's own: an insert of `events` into the outbox, written only when
   * `when` holds. Publish them with `publish` once the statement has committed.
   */
  record(events: EventEnvelope[], when?: SQL): SQL;
  /** Publishes events a caller's own transaction has committed, then marks them sent. Never throws. */
  publish(db: Queryable, events: EventEnvelope[]): Promise<{ published: number; failed: number }>;
}

export function serviceEvents(service: string, source: string, outbox: OutboxTable, bus: EventBus, inbox?: InboxTable): ServiceEvents {
  const own = (events: EventEnvelope[]) => {
    for (const event of events) {
      const declared = (eventCatalog as Record<string, { service: string }>)[event.type]?.service;
      if (declared !== service) throw new Error(`${service} cannot publish ${event.type}: the event catalog gives it to ${declared ?? "no service"}`);
    }
    return events;
  };
  const publish = (db: Queryable, events: EventEnvelope[]) => relayEvents(db, { outbox, source, bus }, events);
  return {
    source,
    outbox,
    ...(inbox ? { inbox } : {}),
    async commit(db, change) {
      const rows = await commitWithEvents(db, { ...change, events: own(change.events), outbox, source });
      if (rows.length > 0) await publish(db, change.events);
      return rows;
    },
    record: (events, when) => outboxInsert(outbox, source, own(events), when),
    publish,
  };
}
