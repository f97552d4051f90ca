import { sql } from "drizzle-orm";
import { index, integer, jsonb, type PgSchema, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import type { EventEnvelope } from "./envelope";

/**
 * A service's outbox: events written in the same statement as the change that caused them,
 * published after commit by the relay, and by the sweeper if the process died first.
 */
export function outboxTable(schema: PgSchema) {
  return schema.table(
    "outbox",
    {
      id: uuid("id").primaryKey(),
      source: text("source").notNull(),
      type: text("type").notNull(),
      detail: jsonb("detail").$type<EventEnvelope>().notNull(),
      createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
      publishedAt: timestamp("published_at", { withTimezone: true }),
      attempts: integer("attempts").notNull().default(0),
      lastError: text("last_error"),
    },
    (t) => [
      index("outbox_unpublished_idx").on(t.createdAt).where(sql`${t.publishedAt} is null`),
      // Retention deletes the oldest published rows in batches: without this each batch would
      // scan the whole table.
      index("outbox_published_idx").on(t.publishedAt).where(sql`${t.publishedAt} is not null`),
    ],
  );
}
export type OutboxTable = ReturnType<typeof outboxTable>;

/** A service's inbox: which events each of its subscribers has already applied. */
export function inboxTable(schema: PgSchema) {
  return schema.table(
    "inbox",
    {
      subscriber: text("subscriber").notNull(),
      eventId: uuid("event_id").notNull(),
      processedAt: timestamp("processed_at", { withTimezone: true }).notNull().defaultNow(),
    },
    // The processed_at index lets retention find old rows without scanning the table.
    (t) => [primaryKey({ columns: [t.subscriber, t.eventId] }), index("inbox_processed_idx").on(t.processedAt)],
  );
}
export type InboxTable = ReturnType<typeof inboxTable>;
