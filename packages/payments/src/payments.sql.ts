import { inboxTable, outboxTable } from "@enclave/core/events/tables";
import { sql } from "drizzle-orm";
import { bigint, check, index, integer, jsonb, numeric, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const paymentsSchema = pgSchema("payments");

export const paymentStatuses = ["pending", "processing", "completed", "failed", "cancelled"] as const;
export type PaymentStatus = (typeof paymentStatuses)[number];
export const paymentTypes = ["instant", "scheduled", "recurring"] as const;
export type PaymentType = (typeof paymentTypes)[number];
export const paymentIntervals = ["daily", "weekly", "monthly"] as const;
export type PaymentInterval = (typeof paymentIntervals)[number];

const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(", "));
const time = (name: string) => timestamp(name, { withTimezone: true });

/**
 * Payments between users. Sender and recipient are auth's user ids, not foreign keys: the
 * auth service owns users. Money is numeric(10,2), a decimal string in TypeScript, never a float.
 *
 * Recurring payments form a series: one row per occurrence (`series_id` = the first
 * occurrence's id, `occurrence` = 1, 2, …); `next_payment_id` links an occurrence to the next
 * one once it is created. `due_at` is when the `due` cron takes a pending payment over:
 * `scheduled_for` for scheduled and recurring ones, a short grace after creation for instant
 * ones (which the payment.created consumer normally processes first).
 */
export const paymentsTable = paymentsSchema.table(
  "payments",
  {
    id: uuid("id").primaryKey(),
    senderId: uuid("sender_id").notNull(),
    recipientId: uuid("recipient_id").notNull(),
    amount: numeric("amount", { precision: 10, scale: 2 }).notNull(),
    currency: text("currency").notNull().default("USD"),
    status: text("status", { enum: paymentStatuses }).notNull().default("pending"),
    type: text("type", { enum: paymentTypes }).notNull().default("instant"),
    description: text("description"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>(),
    scheduledFor: time("scheduled_for"),
    interval: text("recurrence_interval", { enum: paymentIntervals }),
    seriesId: uuid("series_id"),
    occurrence: integer("occurrence"),
    nextPaymentId: uuid("next_payment_id"),
    dueAt: time("due_at").notNull(),
    pspTransactionId: text("psp_transaction_id"),
    pspStatus: text("psp_status"),
    failureReason: text("failure_reason"),
    completedAt: time("completed_at"),
    createdAt: time("created_at").notNull().defaultNow(),
    updatedAt: time("updated_at").notNull().defaultNow(),
  },
  (t) => [
    check("payments_amount_positive", sql`${t.amount} > 0`),
    check("payments_currency_format", sql`${t.currency} ~ '^[A-Z]{3}$'`),
    check("payments_status_check", sql`${t.status} in (${inList(paymentStatuses)})`),
    check("payments_type_check", sql`${t.type} in (${inList(paymentTypes)})`),
    check("payments_interval_check", sql`${t.interval} is null or ${t.interval} in (${inList(paymentIntervals)})`),
    check("payments_not_to_self", sql`${t.senderId} <> ${t.recipientId}`),
    check(
      "payments_schedule_shape",
      sql`coalesce(
        (${t.type} = 'instant' and ${t.scheduledFor} is null and ${t.interval} is null and ${t.seriesId} is null and ${t.occurrence} is null)
        or (${t.type} = 'scheduled' and ${t.scheduledFor} is not null and ${t.interval} is null and ${t.seriesId} is null and ${t.occurrence} is null)
        or (${t.type} = 'recurring' and ${t.scheduledFor} is not null and ${t.interval} is not null and ${t.seriesId} is not null and ${t.occurrence} is not null and ${t.occurrence} >= 1),
        false)`,
    ),
    // Lists: newest first per party, with and without a status filter (keyset on created_at, id).
    index("payments_sender_created_idx").on(t.senderId, t.createdAt, t.id),
    index("payments_sender_status_created_idx").on(t.senderId, t.status, t.createdAt, t.id),
    index("payments_recipient_created_idx").on(t.recipientId, t.createdAt, t.id),
    index("payments_recipient_status_created_idx").on(t.recipientId, t.status, t.createdAt, t.id),
    // The due cron: pending payments by due time, processing ones by lease age, recurring ones awaiting their next occurrence.
    index("payments_pending_due_idx").on(t.dueAt).where(sql`${t.status} = 'pending'`),
    index("payments_processing_idx").on(t.updatedAt).where(sql`${t.status} = 'processing'`),
    index("payments_recurring_next_idx").on(t.completedAt).where(sql`${t.type} = 'recurring' and ${t.status} = 'completed' and ${t.nextPaymentId} is null`),
    // One row per occurrence of a series, however many cron runs overlap.
    uniqueIndex("payments_series_occurrence_key").on(t.seriesId, t.occurrence),
  ],
);

/** The status history of a payment: one row per status, appended in the statement that changes it. */
export const paymentTransactionsTable = paymentsSchema.table(
  "payment_transactions",
  {
    id: uuid("id").primaryKey(),
    /** Append order; history is listed by it (timestamps from different clocks could tie or disagree). */
    seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
    paymentId: uuid("payment_id")
      .notNull()
      .references(() => paymentsTable.id, { onDelete: "cascade" }),
    status: text("status", { enum: paymentStatuses }).notNull(),
    statusMessage: text("status_message"),
    /** The provider's id and status word for a change the provider caused (null for the others). */
    pspTransactionId: text("psp_transaction_id"),
    pspStatus: text("psp_status"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>(),
    createdAt: time("created_at").notNull().defaultNow(),
  },
  (t) => [
    check("payment_transactions_status_check", sql`${t.status} in (${inList(paymentStatuses)})`),
    index("payment_transactions_payment_idx").on(t.paymentId, t.seq),
  ],
);

/**
 * Idempotency keys of POST /payments, scoped to the caller. The first result (status and body)
 * is stored in the same statement as the payment it created and replayed for the same key and
 * body. Rows are kept at least until `expires_at` (24 hours).
 */
export const idempotencyKeysTable = paymentsSchema.table(
  "idempotency_keys",
  {
    callerId: uuid("caller_id").notNull(),
    key: text("key").notNull(),
    /** SHA-256 of the canonical request body. */
    fingerprint: text("fingerprint").notNull(),
    paymentId: uuid("payment_id").notNull(),
    responseStatus: integer("response_status").notNull(),
    responseBody: jsonb("response_body").notNull(),
    createdAt: time("created_at").notNull().defaultNow(),
    expiresAt: time("expires_at").notNull(),
  },
  (t) => [primaryKey({ name: "idempotency_keys_pkey", columns: [t.callerId, t.key] }), index("idempotency_keys_expires_idx").on(t.expiresAt)],
);

export const paymentsOutbox = outboxTable(paymentsSchema);
export const paymentsInbox = inboxTable(paymentsSchema);
