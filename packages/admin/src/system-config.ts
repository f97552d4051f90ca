import { AppError, changed, createEvent, type EventEnvelope, iso } from "@enclave/core";
import { asc, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import { auditLogsTable, systemConfigTable } from "./admin.sql";
import { auditEntryOf } from "./audit";
import type { AdminContext } from "./context";
import type { RequestOrigin } from "./origin";

export const ConfigKey = z
  .string()
  .check(z.regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, "must be 1 to 128 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"))
  // A key every stage has (the essential seed), so the example finds something.
  .register(z.globalRegistry, { description: "A configuration key: 1 to 128 of a-z, 0-9, '.', '_', '-'.", examples: ["maintenance.enabled"] });
export const MAX_CONFIG_VALUE_BYTES = 64 * 1024;

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? "");

export const ConfigInput = z
  .strictObject({
    /** Any JSON value (null included), at most 64 KB as JSON. */
    value: z.unknown().check(
      z.refine((value) => value !== undefined, "is required"),
      z.refine((value) => value === undefined || jsonBytes(value) <= MAX_CONFIG_VALUE_BYTES, `must be at most ${MAX_CONFIG_VALUE_BYTES} bytes as JSON`),
    ),
    /** Omitted: keep the current description; null: clear it. */
    description: z.optional(z.nullable(z.string().check(z.maxLength(500)))),
  })
  .register(z.globalRegistry, {
    id: "PutConfigRequest",
    description:
      "The key's new value (any JSON value, `null` included, at most 64 KB as JSON) and, optionally, its description (`null` clears it; omitted keeps it).",
    examples: [{ value: false, description: "While true, clients show a maintenance notice." }],
  });
export type ConfigInput = z.output<typeof ConfigInput>;

export const ConfigItem = z
  .object({
    key: z.string(),
    value: z.unknown(),
    description: z.nullable(z.string()),
    updatedAt: z.string(),
    /** The admin who last set it; null for defaults from the essential seed. */
    updatedBy: z.nullable(z.string()),
  })
  .register(z.globalRegistry, {
    id: "ConfigItem",
    description:
      "A system configuration key with its JSON value; `updatedBy` is the administrator who last set it (`null` for the defaults every stage starts with).",
    examples: [
      {
        key: "maintenance.enabled",
        value: false,
        description: "While true, clients show a maintenance notice.",
        updatedAt: "2025-03-14T09:00:00.000Z",
        updatedBy: null,
      },
    ],
  });
export type ConfigItem = z.output<typeof ConfigItem>;
export const ConfigList = z
  .object({ items: z.array(ConfigItem) })
  .register(z.globalRegistry, { id: "ConfigList", description: "Every configuration key, by key." });

type ConfigRow = typeof systemConfigTable.$inferSelect;

export function toConfigItem(row: ConfigRow): ConfigItem {
  return { key: row.key, value: row.value, description: row.description, updatedAt: iso(row.updatedAt) as string, updatedBy: row.updatedBy };
}

/** Who changes configuration, and from where: recorded on the audit row. */
export interface ConfigActor extends RequestOrigin {
  /** The admin's user id; null for the essential seed. */
  userId: string | null;
  correlationId: string;
}

export async function listConfig(ctx: AdminContext): Promise<ConfigItem[]> {
  const db = (await ctx.database()).db;
  const rows = await db.select().from(systemConfigTable).orderBy(asc(systemConfigTable.key));
  return rows.map(toConfigItem);
}

export async function getConfig(ctx: AdminContext, key: string): Promise<ConfigItem> {
  const db = (await ctx.database()).db;
  const [row] = await db.select().from(systemConfigTable).where(eq(systemConfigTable.key, key));
  if (!row) throw new AppError("not_found", "No such configuration key.");
  return toConfigItem(row);
}

/**
 * The audit row of a configuration change, inserted from the `change` CTE of the same statement
 * as the change and its config.changed outbox row. Its id is the event's id, so when the event
 * comes back through the bus the audit consumer's insert finds it and adds nothing: one row
 * per change, carrying the caller's ip address and user agent, which never travel on the bus.
 * `details` is the event data plus what the event does not carry: the operation and the value.
 */
function auditOfChange(event: EventEnvelope, actor: ConfigActor, details: SQL): SQL {
  const entry = auditEntryOf(event);
  return sql`insert into ${auditLogsTable}
    ("id", "user_id", "actor_id", "action", "resource_type", "resource_id", "details", "ip_address", "user_agent", "correlation_id", "created_at")
    select ${entry.id}::uuid, ${entry.userId}::uuid, ${entry.actorId}::uuid, ${entry.action}, ${entry.resourceType}, ${entry.resourceId}, ${details},
      ${actor.ipAddress}, ${actor.userAgent}, ${entry.correlationId}, ${entry.createdAt}::timestamptz
    from ${changed}`;
}

const configEvent = (key: string, actor: ConfigActor) => createEvent("config.changed", { key }, { correlationId: actor.correlationId, actor: actor.userId });

/**
 * Creates or replaces a key: the row, its audit row and config.changed in the outbox in one
 * statement, then the relay (two round trips).
 */
export async function putConfig(ctx: AdminContext, key: string, input: ConfigInput, actor: ConfigActor): Promise<ConfigItem> {
  const row = await writeConfig(ctx, key, input, actor, "upsert");
  if (!row) throw new Error("an upsert returned no row");
  return row;
}

/** Adds a key unless it exists, recording nothing when it does (the essential seed). Returns whether it added it. */
export async function addConfigIfAbsent(ctx: AdminContext, key: string, input: ConfigInput, actor: ConfigActor): Promise<boolean> {
  return (await writeConfig(ctx, key, input, actor, "insert")) !== undefined;
}

async function writeConfig(ctx: AdminContext, key: string, input: ConfigInput, actor: ConfigActor, mode: "upsert" | "insert") {
  const db = (await ctx.database()).db;
  const event = configEvent(key, actor);
  const insert = db.insert(systemConfigTable).values({
    key,
    value: sql`${JSON.stringify(input.value)}::jsonb`,
    description: input.description ?? null,
    updatedAt: sql`now()`,
    updatedBy: actor.userId,
  });
  const returning = { ...getTableColumns(systemConfigTable), created: sql<boolean>`(xmax = 0)`.as("created") };
  const change =
    mode === "insert"
      ? insert.onConflictDoNothing({ target: systemConfigTable.key }).returning(returning)
      : insert
          .onConflictDoUpdate({
            target: systemConfigTable.key,
            set: {
              value: sql`excluded."value"`,
              ...(input.description === undefined ? {} : { description: sql`excluded."description"` }),
              updatedAt: sql`now()`,
              updatedBy: sql`excluded."updated_by"`,
            },
          })
          .returning(returning);
  const details = sql`jsonb_build_object('key', "key", 'operation', case when "created" then 'created' else 'updated' end, 'value', "value")`;
  const [row] = await ctx.events.commit(db, {
    table: systemConfigTable,
    change,
    also: [auditOfChange(event, actor, details)],
    events: [event],
  });
  if (!row) return undefined;
  return toConfigItem(row);
}

/** Deletes a key with its audit row and config.changed (two round trips); 404 if it does not exist. */
export async function deleteConfig(ctx: AdminContext, key: string, actor: ConfigActor): Promise<void> {
  const db = (await ctx.database()).db;
  const event = configEvent(key, actor);
  const details = sql`jsonb_build_object('key', "key", 'operation', 'deleted', 'value', "value")`;
  const [row] = await ctx.events.commit(db, {
    table: systemConfigTable,
    change: db.delete(systemConfigTable).where(eq(systemConfigTable.key, key)).returning(),
    also: [auditOfChange(event, actor, details)],
    events: [event],
  });
  if (!row) throw new AppError("not_found", "No such configuration key.");
}
