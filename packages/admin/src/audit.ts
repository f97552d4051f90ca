import { AppError, CURSOR_EXAMPLE, decodeCursor, encodeCursor, Instant, iso, Limit, pageOf, UnknownEventError, Uuid, uuidPattern } from "@enclave/core";
import { and, desc, eq, gte, lte, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import { auditLogsTable } from "./admin.sql";
import type { AdminContext } from "./context";

export const AuditLogInfo = z
  .object({
    /** The id of the event the row records. */
    id: z.string(),
    /** The event type. */
    action: z.string(),
    /** The user the action concerns (payments: the sender; config: the admin). */
    userId: z.nullable(z.string()),
    /** Who did it (`metadata.actor`), when known. */
    actorId: z.nullable(z.string()),
    resourceType: z.nullable(z.string()),
    resourceId: z.nullable(z.string()),
    /** The event's data. */
    details: z.unknown(),
    /** Set on admin actions recorded by this service from the request itself. */
    ipAddress: z.nullable(z.string()),
    userAgent: z.nullable(z.string()),
    correlationId: z.nullable(z.string()),
    /** When the action happened (the event's `occurredAt`). */
    createdAt: z.string(),
  })
  .register(z.globalRegistry, {
    id: "AuditLog",
    description:
      "One event of the app, as recorded: `action` is the event type, `userId` the user it concerns, `actorId` who did it, `details` the event's data. Admin actions also carry the caller's IP address and user agent.",
    examples: [
      {
        id: "0192d4e9-0a1d-7e4f-8a51-6c7d8e9fa0b1",
        action: "payment.created",
        userId: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f",
        actorId: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f",
        resourceType: "payment",
        resourceId: "0192d4e9-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
        details: { paymentId: "0192d4e9-0a1b-7c2d-8e3f-4a5b6c7d8e9f", amount: "12.50", currency: "USD", status: "pending" },
        ipAddress: null,
        userAgent: null,
        correlationId: "0192d4e9-09ff-7b00-8c11-2d3e4f5a6b7c",
        createdAt: "2025-03-14T09:26:00.000Z",
      },
    ],
  });
export type AuditLogInfo = z.output<typeof AuditLogInfo>;
export const AuditLogPage = pageOf(AuditLogInfo).register(z.globalRegistry, {
  id: "AuditLogPage",
  description: "Audit-log rows, newest first; `nextCursor` fetches the next page, `null` on the last.",
});

/** What an audit row says about one event, as far as its envelope can be read. */
export interface AuditEntry {
  id: string;
  action: string;
  userId: string | null;
  actorId: string | null;
  resourceType: string | null;
  resourceId: string | null;
  details: unknown;
  correlationId: string | null;
  /** ISO time, millisecond precision. */
  createdAt: string;
}

/**
 * The least an envelope must have to be audited: an id to deduplicate on and a type. The rest
 * (data, metadata, occurredAt, version) is read if it is there and usable: the audit log
 * records events of types and versions it has never seen instead of rejecting them.
 */
const AuditableEnvelope = z.object({
  id: z.string().check(z.regex(uuidPattern, "must be a UUID")),
  type: z.string().check(z.minLength(1), z.maxLength(200)),
  occurredAt: z.optional(z.unknown()),
  data: z.optional(z.unknown()),
  metadata: z.optional(z.unknown()),
});

const asUuid = (value: unknown): string | null => (typeof value === "string" && uuidPattern.test(value) ? value.toLowerCase() : null);
const asId = (value: unknown): string | null =>
  typeof value === "string" && value !== "" ? value.slice(0, 200) : typeof value === "number" && Number.isFinite(value) ? String(value) : null;
const asText = (value: unknown, max: number): string | null => (typeof value === "string" && value !== "" ? value.slice(0, max) : null);
const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value);

type Subject = { userId: string | null; resourceId: string | null };

/**
 * Who and what each domain's events are about, by the type's first segment, so new event types
 * of a known domain (say `payment.refunded`) are mapped without a change here.
 */
const subjects: Record<string, (data: Record<string, unknown>, actor: string | null) => Subject> = {
  user: (data) => ({ userId: asUuid(data.userId), resourceId: asId(data.userId) }),
  profile: (data) => ({ userId: asUuid(data.userId), resourceId: asId(data.profileId) }),
  payment: (data) => ({ userId: asUuid(data.senderId), resourceId: asId(data.paymentId) }),
  config: (data, actor) => ({ userId: actor, resourceId: asId(data.key) }),
};

/** Reads an audit entry from an event envelope (`detail`); throws when it is not an envelope at all. */
export function auditEntryOf(detail: unknown, now = new Date()): AuditEntry {
  const parsed = z.safeParse(AuditableEnvelope, detail);
  if (!parsed.success) {
    throw new UnknownEventError(`not an event envelope: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(detail)"}: ${i.message}`).join("; ")}`);
  }
  const envelope = parsed.data;
  const data = isRecord(envelope.data) ? envelope.data : {};
  const metadata = isRecord(envelope.metadata) ? envelope.metadata : {};
  const actorId = asUuid(metadata.actor);
  const domain = /^([a-z][a-z0-9_-]{0,63})\./i.exec(envelope.type)?.[1]?.toLowerCase() ?? null;
  const known = domain ? subjects[domain] : undefined;
  const subject: Subject = known
    ? known(data, actorId)
    : { userId: asUuid(data.userId), resourceId: domain ? (asId(data[`${domain}Id`]) ?? asId(data.id)) : asId(data.id) };
  const occurred = typeof envelope.occurredAt === "string" ? new Date(envelope.occurredAt) : undefined;
  const usable = occurred !== undefined && !Number.isNaN(occurred.getTime()) && occurred.getUTCFullYear() >= 1970 && occurred.getUTCFullYear() <= 9999;
  return {
    id: envelope.id.toLowerCase(),
    action: envelope.type,
    userId: subject.userId ?? asUuid(data.userId) ?? actorId,
    actorId,
    resourceType: domain,
    resourceId: subject.resourceId,
    details: envelope.data === undefined ? null : envelope.data,
    correlationId: asText(metadata.correlationId, 200),
    createdAt: (usable ? occurred : now).toISOString(),
  };
}

/**
 * Records one event. The event id is the primary key and the insert does nothing on conflict,
 * so a redelivery, or two deliveries racing each other, leave exactly one row: the second
 * insert waits for the first to commit and then skips. One round trip.
 */
export async function recordEvent(ctx: AdminContext, detail: unknown): Promise<"recorded" | "duplicate"> {
  const entry = auditEntryOf(detail);
  const db = (await ctx.database()).db;
  const inserted = await db
    .insert(auditLogsTable)
    .values({ ...entry, details: entry.details === null ? null : sql`${JSON.stringify(entry.details)}::jsonb`, createdAt: new Date(entry.createdAt) })
    .onConflictDoNothing({ target: auditLogsTable.id })
    .returning({ id: auditLogsTable.id });
  return inserted.length > 0 ? "recorded" : "duplicate";
}

export const AuditLogQuery = z
  .strictObject({
    userId: z.optional(Uuid).register(z.globalRegistry, { description: "Only rows about this user." }),
    action: z
      .optional(z.string().check(z.minLength(1), z.maxLength(200)))
      .register(z.globalRegistry, { description: "Only this event type.", examples: ["payment.created"] }),
    resourceType: z
      .optional(z.string().check(z.minLength(1), z.maxLength(64)))
      .register(z.globalRegistry, { description: "Only this kind of resource: `user`, `profile`, `payment`, `config`…", examples: ["payment"] }),
    from: z.optional(Instant).register(z.globalRegistry, { description: "Only rows at or after this time.", examples: ["2025-01-01T00:00:00Z"] }),
    to: z.optional(Instant).register(z.globalRegistry, { description: "Only rows at or before this time.", examples: ["2030-01-01T00:00:00Z"] }),
    limit: Limit,
    cursor: z
      .optional(z.string().check(z.minLength(1), z.maxLength(512)))
      .register(z.globalRegistry, { description: "The previous page's `nextCursor`; omit for the first page.", examples: [CURSOR_EXAMPLE] }),
  })
  .check(
    z.refine((query) => query.from === undefined || query.to === undefined || Date.parse(query.from) <= Date.parse(query.to), {
      message: "must not be after to",
      path: ["from"],
    }),
  );
export type AuditLogQuery = z.output<typeof AuditLogQuery>;

/** The cursor's keyset, checked as strictly as the filters: a tampered cursor is a 400, never a database error. */
function decodeKeyset(cursor: string | undefined) {
  const keyset = decodeCursor(cursor);
  if (keyset && !z.safeParse(Instant, keyset.t).success) {
    throw new AppError("validation_failed", "The cursor is not valid.", { details: [{ path: "cursor", message: "invalid cursor" }] });
  }
  return keyset;
}

type AuditRow = typeof auditLogsTable.$inferSelect;

export function toAuditLogInfo(row: AuditRow): AuditLogInfo {
  return {
    id: row.id,
    action: row.action,
    userId: row.userId,
    actorId: row.actorId,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    details: row.details ?? null,
    ipAddress: row.ipAddress,
    userAgent: row.userAgent,
    correlationId: row.correlationId,
    createdAt: iso(row.createdAt) as string,
  };
}

/**
 * A page of the audit log, newest first. Each filter is an index prefix followed by
 * (created_at, id), so a page is one index range scan whatever the filters. One round trip.
 */
export async function listAuditLogs(ctx: AdminContext, query: AuditLogQuery): Promise<z.output<typeof AuditLogPage>> {
  const after = decodeKeyset(query.cursor);
  const t = auditLogsTable;
  const conditions: (SQL | undefined)[] = [
    query.userId ? eq(t.userId, query.userId.toLowerCase()) : undefined,
    query.action ? eq(t.action, query.action) : undefined,
    query.resourceType ? eq(t.resourceType, query.resourceType) : undefined,
    query.from ? gte(t.createdAt, new Date(query.from)) : undefined,
    query.to ? lte(t.createdAt, new Date(query.to)) : undefined,
    after ? sql`(${t.createdAt}, ${t.id}) < (${after.t}::timestamptz, ${after.id}::uuid)` : undefined,
  ];
  const db = (await ctx.database()).db;
  const rows = await db
    .select()
    .from(t)
    .where(and(...conditions))
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(query.limit + 1);
  const items = rows.slice(0, query.limit);
  const last = items.at(-1);
  return {
    items: items.map(toAuditLogInfo),
    nextCursor: rows.length > query.limit && last ? encodeCursor({ t: iso(last.createdAt) as string, id: last.id }) : null,
  };
}
