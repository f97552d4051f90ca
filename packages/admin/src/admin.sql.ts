import { inboxTable, outboxTable } from "@enclave/core/events/tables";
import { sql } from "drizzle-orm";
import { check, customType, index, pgSchema, text, timestamp, uuid } from "drizzle-orm/pg-core";

export const adminSchema = pgSchema("admin");

/**
 * jsonb whose values come back exactly as stored. Drizzle's own jsonb column parses strings the
 * driver returns a second time, so a stored JSON string "123" would read back as the number 123.
 * Every driver we use already parses jsonb. Write JSON null as `sql\`'null'::jsonb\``: a plain
 * `null` is SQL NULL.
 */
export const jsonValue = customType<{ data: unknown; driverData: unknown }>({
  dataType: () => "jsonb",
  toDriver: (value) => JSON.stringify(value),
  fromDriver: (value) => value,
});

/**
 * One row per event of the app, keyed by the event's id (`detail.id`), so a redelivered or
 * concurrently delivered event inserts nothing the second time. Admin actions that emit an
 * event write their row in the same statement as the change, with the caller's ip address and
 * user agent; the consumer's later insert of that event is then a no-op.
 *
 * `created_at` is when the action happened (the event's `occurredAt`), at millisecond
 * precision so that the keyset cursor (an ISO time) addresses rows exactly.
 */
export const auditLogsTable = adminSchema.table(
  "audit_logs",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id"),
    actorId: uuid("actor_id"),
    action: text("action").notNull(),
    resourceType: text("resource_type"),
    resourceId: text("resource_id"),
    details: jsonValue("details"),
    ipAddress: text("ip_address"),
    userAgent: text("user_agent"),
    correlationId: text("correlation_id"),
    createdAt: timestamp("created_at", { withTimezone: true, precision: 3 }).notNull(),
    recordedAt: timestamp("recorded_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Newest first, and each filter followed by the same keyset so every filtered page is an index range.
    index("audit_logs_created_idx").on(t.createdAt, t.id),
    index("audit_logs_user_created_idx").on(t.userId, t.createdAt, t.id),
    index("audit_logs_action_created_idx").on(t.action, t.createdAt, t.id),
    index("audit_logs_resource_created_idx").on(t.resourceType, t.createdAt, t.id),
  ],
);

export const systemConfigTable = adminSchema.table(
  "system_config",
  {
    key: text("key").primaryKey(),
    value: jsonValue("value").notNull(),
    description: text("description"),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    updatedBy: uuid("updated_by"),
  },
  (t) => [check("system_config_key_check", sql`${t.key} ~ '^[a-z0-9][a-z0-9._-]{0,127}$'`)],
);

export const adminOutbox = outboxTable(adminSchema);
export const adminInbox = inboxTable(adminSchema);
