import { createHash } from "node:crypto";
import {
  AppError,
  CURSOR_EXAMPLE,
  changed,
  createdResponse,
  createEvent,
  decodeCursor,
  Email,
  type EventEnvelope,
  type EventMetadata,
  encodeCursor,
  IsoTime,
  idempotencyKeyReused,
  iso,
  isRealInstant,
  Limit,
  mapRow,
  pageOf,
  pgConstraint,
  pgErrorCode,
  preparedSql,
  type Role,
  SafeText,
  uuidv7,
} from "@enclave/core";
import { and, asc, desc, eq, or, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import type { PaymentsContext } from "./context";
import { Currency, Money } from "./money";
import {
  idempotencyKeysTable,
  type PaymentInterval,
  type PaymentStatus,
  paymentIntervals,
  paymentStatuses,
  paymentsTable,
  paymentTransactionsTable,
  paymentTypes,
} from "./payments.sql";
import { appendTransaction, transition } from "./state-machine";

export type PaymentRow = typeof paymentsTable.$inferSelect;

/** `payment` of API.md. */
export const PaymentInfo = z
  .object({
    id: z.string(),
    senderId: z.string(),
    recipientId: z.string(),
    amount: z.string(),
    currency: z.string(),
    status: z.enum(paymentStatuses),
    type: z.enum(paymentTypes),
    description: z.nullable(z.string()),
    scheduledFor: z.nullable(z.string()),
    interval: z.nullable(z.enum(paymentIntervals)),
    pspTransactionId: z.nullable(z.string()),
    failureReason: z.nullable(z.string()),
    completedAt: z.nullable(z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .register(z.globalRegistry, {
    id: "Payment",
    description:
      "A payment from its sender to its recipient. `amount` is a decimal string with two decimals. `status` goes `pending` → `processing` → `completed` or `failed`, or `pending` → `cancelled`.",
    examples: [
      {
        id: "0192d4e9-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
        senderId: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f",
        recipientId: "0192d4e0-1111-7222-8333-444455556666",
        amount: "12.50",
        currency: "USD",
        status: "completed",
        type: "instant",
        description: "Lunch",
        scheduledFor: null,
        interval: null,
        pspTransactionId: "sim_0192d4e9",
        failureReason: null,
        completedAt: "2025-03-14T09:28:01.120Z",
        createdAt: "2025-03-14T09:26:00.000Z",
        updatedAt: "2025-03-14T09:28:01.120Z",
      },
    ],
  });
export type PaymentInfo = z.output<typeof PaymentInfo>;
export const PaymentPage = pageOf(PaymentInfo).register(z.globalRegistry, {
  id: "PaymentPage",
  description: "Payments, newest first; `nextCursor` fetches the next page, `null` on the last.",
});

export function toPaymentInfo(row: PaymentRow): PaymentInfo {
  return {
    id: row.id,
    senderId: row.senderId,
    recipientId: row.recipientId,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    type: row.type,
    description: row.description,
    scheduledFor: iso(row.scheduledFor),
    interval: row.interval,
    pspTransactionId: row.pspTransactionId,
    failureReason: row.failureReason,
    completedAt: iso(row.completedAt),
    createdAt: iso(row.createdAt) as string,
    updatedAt: iso(row.updatedAt) as string,
  };
}

type PaymentEventType = "payment.created" | "payment.completed" | "payment.failed" | "payment.cancelled";

/** A payment event (API.md data) for a payment in its new status. */
export function paymentEvent(type: PaymentEventType, payment: PaymentRow, status: PaymentStatus, metadata: EventMetadata, now: Date): EventEnvelope {
  return createEvent(
    type,
    { paymentId: payment.id, senderId: payment.senderId, recipientId: payment.recipientId, amount: payment.amount, currency: payment.currency, status },
    metadata,
    now,
  );
}

export const CreatePaymentInput = z
  .strictObject({
    recipientEmail: Email,
    amount: Money,
    currency: z._default(Currency, "USD"),
    type: z._default(z.enum(paymentTypes), "instant"),
    description: z.optional(z.nullable(SafeText(500))),
    scheduledFor: z.optional(IsoTime),
    interval: z.optional(z.enum(paymentIntervals)),
  })
  .register(z.globalRegistry, {
    id: "CreatePaymentRequest",
    description:
      "Whom to pay (a registered user's email, not the caller's own) and how much. `instant` (the default) is processed at once; `scheduled` needs `scheduledFor` in the future; `recurring` needs `interval` and repeats from `scheduledFor` (or now).",
    // The first is the one "Try it out" sends: the recipient is the administrator of the development data set.
    examples: [
      { recipientEmail: "admin@enclave.dev", amount: "12.50", currency: "USD" },
      {
        recipientEmail: "admin@enclave.dev",
        amount: "40.00",
        currency: "USD",
        type: "scheduled",
        scheduledFor: "2030-01-01T09:00:00Z",
        description: "Rent share",
      },
      { recipientEmail: "admin@enclave.dev", amount: "9.99", type: "recurring", interval: "monthly", description: "Streaming subscription" },
    ],
  });
export type CreatePaymentInput = z.output<typeof CreatePaymentInput>;

export const ListPaymentsQuery = z.object({
  limit: Limit,
  cursor: z
    .optional(z.string().check(z.maxLength(512)))
    .register(z.globalRegistry, { description: "The previous page's `nextCursor`; omit for the first page.", examples: [CURSOR_EXAMPLE] }),
  status: z.optional(z.enum(paymentStatuses)).register(z.globalRegistry, { description: "Only payments in this status.", examples: ["completed"] }),
  role: z
    .optional(z.enum(["sender", "recipient"]))
    .register(z.globalRegistry, { description: "Only payments the caller sent, or only those they received.", examples: ["sender"] }),
});
export type ListPaymentsQuery = z.output<typeof ListPaymentsQuery>;

export const TransactionInfo = z
  .object({
    id: z.string(),
    paymentId: z.string(),
    status: z.enum(paymentStatuses),
    statusMessage: z.nullable(z.string()),
    pspTransactionId: z.nullable(z.string()),
    createdAt: z.string(),
  })
  .register(z.globalRegistry, {
    id: "Transaction",
    description: "One status change of a payment: the status it entered, and why.",
    examples: [
      {
        id: "0192d4e9-0a1c-7d3e-8f40-5b6c7d8e9fa0",
        paymentId: "0192d4e9-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
        status: "pending",
        statusMessage: "created",
        pspTransactionId: null,
        createdAt: "2025-03-14T09:26:00.000Z",
      },
    ],
  });
export type TransactionInfo = z.output<typeof TransactionInfo>;

const invalid = (path: string, message: string) => new AppError("validation_failed", "The request body is not valid.", { details: [{ path, message }] });

/** Checks that need no clock: which fields go with which type. */
function checkShape(input: CreatePaymentInput) {
  if (input.type === "instant" && input.scheduledFor !== undefined) throw invalid("scheduledFor", "is only for scheduled and recurring payments");
  if (input.type !== "recurring" && input.interval !== undefined) throw invalid("interval", "is only for recurring payments");
  if (input.type === "scheduled" && input.scheduledFor === undefined) throw invalid("scheduledFor", "is required for a scheduled payment");
  if (input.type === "recurring" && input.interval === undefined) throw invalid("interval", "is required for a recurring payment (daily, weekly or monthly)");
  if (input.scheduledFor !== undefined && !isRealInstant(input.scheduledFor)) throw invalid("scheduledFor", "must be a valid time");
}

/**
 * The request as compared between retries: defaults applied, amount and time normalized, email
 * lower-cased, so `"12.5"` and `"12.50"` are the same request and a different payee is not.
 */
function fingerprintOf(input: CreatePaymentInput): string {
  const canonical = {
    recipientEmail: input.recipientEmail.toLowerCase(),
    amount: input.amount,
    currency: input.currency,
    type: input.type,
    description: input.description || null,
    scheduledFor: input.scheduledFor === undefined ? null : new Date(input.scheduledFor).toISOString(),
    interval: input.interval ?? null,
  };
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** A payment a request created, or the one an earlier request with the same key created. */
export interface CreatedPayment {
  payment: PaymentInfo;
  replayed: boolean;
}

function replay(stored: typeof idempotencyKeysTable.$inferSelect, fingerprint: string): CreatedPayment {
  if (stored.fingerprint !== fingerprint) throw idempotencyKeyReused();
  return { payment: (stored.responseBody as { payment: PaymentInfo }).payment, replayed: true };
}

/**
 * POST /payments. Round trips: the key lookup, one statement (payment, first history row,
 * idempotency record and payment.created), and the relay's mark-sent: 3. A replay costs 1.
 * The recipient lookup is an HTTP call to auth (cached), made only when the key is new.
 */
export async function createPayment(
  ctx: PaymentsContext,
  senderId: string,
  key: string,
  input: CreatePaymentInput,
  metadata: EventMetadata,
): Promise<CreatedPayment> {
  checkShape(input);
  const db = (await ctx.database()).db;
  const fingerprint = fingerprintOf(input);
  const lookupKey = () =>
    db
      .select()
      .from(idempotencyKeysTable)
      .where(and(eq(idempotencyKeysTable.callerId, senderId), eq(idempotencyKeysTable.key, key)));

  const [stored] = await lookupKey();
  if (stored) return replay(stored, fingerprint);

  const now = ctx.now();
  let scheduledFor: Date | null = null;
  if (input.scheduledFor !== undefined) {
    scheduledFor = new Date(input.scheduledFor);
    if (scheduledFor.getTime() <= now.getTime()) throw invalid("scheduledFor", "must be in the future");
  } else if (input.type === "recurring") {
    scheduledFor = now; // the first occurrence is due at once
  }

  const recipient = await ctx.users.findByEmail(input.recipientEmail, { requestId: metadata.correlationId });
  if (!recipient) throw new AppError("not_found", "No user has this email.", { details: [{ path: "recipientEmail", message: "no such user" }] });
  if (recipient.id === senderId) throw invalid("recipientEmail", "you cannot pay yourself");

  const id = uuidv7(now.getTime());
  const row: PaymentRow = {
    id,
    senderId,
    recipientId: recipient.id,
    amount: input.amount,
    currency: input.currency,
    status: "pending",
    type: input.type,
    description: input.description || null,
    metadata: { requestId: metadata.correlationId },
    scheduledFor,
    interval: (input.interval ?? null) as PaymentInterval | null,
    seriesId: input.type === "recurring" ? id : null,
    occurrence: input.type === "recurring" ? 1 : null,
    nextPaymentId: null,
    dueAt: scheduledFor ?? new Date(now.getTime() + ctx.processing.instantGraceMs),
    pspTransactionId: null,
    pspStatus: null,
    failureReason: null,
    completedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  const payment = toPaymentInfo(row);
  const response = createdResponse({ payment });
  const event = paymentEvent("payment.created", row, "pending", { ...metadata, actor: senderId }, now);
  const expiresAt = new Date(now.getTime() + ctx.idempotencyTtlMs);
  try {
    await ctx.events.commit(db, {
      table: paymentsTable,
      change: db.insert(paymentsTable).values(row).returning(),
      also: [
        appendTransaction({ status: "pending", message: "created", now }),
        sql`insert into ${idempotencyKeysTable} ("caller_id", "key", "fingerprint", "payment_id", "response_status", "response_body", "created_at", "expires_at")
          select ${senderId}::uuid, ${key}, ${fingerprint}, "id", ${response.status}, ${JSON.stringify(response.body)}::jsonb, ${now.toISOString()}::timestamptz, ${expiresAt.toISOString()}::timestamptz from ${changed}`,
      ],
      events: [event],
    });
  } catch (error) {
    // A concurrent request with the same key committed first: nothing of ours was written.
    if (pgErrorCode(error) === "23505" && pgConstraint(error) === "idempotency_keys_pkey") {
      const [winner] = await lookupKey();
      if (winner) return replay(winner, fingerprint);
    }
    throw error;
  }
  return { payment, replayed: false };
}

/** Who is asking: a signed-in user and their role. */
export interface Viewer {
  userId: string;
  role: Role;
}

function visibleTo(me: Viewer): SQL | undefined {
  return me.role === "ADMIN" ? undefined : or(eq(paymentsTable.senderId, me.userId), eq(paymentsTable.recipientId, me.userId));
}
const notFound = () => new AppError("not_found", "No such payment.");

/** GET /payments/:id: one round trip. Someone else's payment is 404, as if it did not exist. */
export async function getPayment(ctx: PaymentsContext, me: Viewer, id: string): Promise<PaymentInfo> {
  const db = (await ctx.database()).db;
  const [row] = await db
    .select()
    .from(paymentsTable)
    .where(and(eq(paymentsTable.id, id), visibleTo(me)));
  if (!row) throw notFound();
  return toPaymentInfo(row);
}

/** GET /payments/:id/transactions: the history, oldest first, in one round trip. */
export async function listTransactions(ctx: PaymentsContext, me: Viewer, id: string): Promise<TransactionInfo[]> {
  const db = (await ctx.database()).db;
  const rows = await db
    .select({ paymentId: paymentsTable.id, tx: paymentTransactionsTable })
    .from(paymentsTable)
    .leftJoin(paymentTransactionsTable, eq(paymentTransactionsTable.paymentId, paymentsTable.id))
    .where(and(eq(paymentsTable.id, id), visibleTo(me)))
    .orderBy(asc(paymentTransactionsTable.seq));
  if (rows.length === 0) throw notFound();
  return rows.flatMap(({ tx }) =>
    tx
      ? [
          {
            id: tx.id,
            paymentId: tx.paymentId,
            status: tx.status,
            statusMessage: tx.statusMessage,
            pspTransactionId: tx.pspTransactionId,
            createdAt: iso(tx.createdAt) as string,
          },
        ]
      : [],
  );
}

/**
 * GET /payments: the caller's payments, newest first, keyset-paginated on (created_at, id), in
 * one round trip. Each party has an index per (party, [status,] created_at, id); without a role
 * filter the two index-ordered branches are merged (UNION ALL: nobody pays themselves).
 */
export async function listPayments(ctx: PaymentsContext, me: Viewer, query: ListPaymentsQuery) {
  const db = (await ctx.database()).db;
  const after = decodeCursor(query.cursor);
  const take = query.limit + 1;
  const role = query.role ?? "both";
  // One statement per shape (role, status filter, cursor), built once: a request fills in its values.
  const statement = preparedSql(db, `payments_list_${role}${query.status ? "_status" : ""}${after ? "_after" : ""}`, () => {
    const branch = (party: typeof paymentsTable.senderId | typeof paymentsTable.recipientId) =>
      db
        .select()
        .from(paymentsTable)
        .where(
          and(
            eq(party, sql.placeholder("me")),
            query.status ? eq(paymentsTable.status, sql.placeholder("status")) : undefined,
            after
              ? sql`(${paymentsTable.createdAt}, ${paymentsTable.id}) < (${sql.placeholder("afterTime")}::timestamptz, ${sql.placeholder("afterId")}::uuid)`
              : undefined,
          ),
        )
        .orderBy(desc(paymentsTable.createdAt), desc(paymentsTable.id))
        .limit(sql.placeholder("take"));
    if (role === "sender") return branch(paymentsTable.senderId).getSQL();
    if (role === "recipient") return branch(paymentsTable.recipientId).getSQL();
    return sql`select * from ((${branch(paymentsTable.senderId)}) union all (${branch(paymentsTable.recipientId)})) as "mine" order by "created_at" desc, "id" desc limit ${sql.placeholder("take")}`;
  });
  const rows = (
    await statement.execute({
      me: me.userId,
      take,
      ...(query.status ? { status: query.status } : {}),
      ...(after ? { afterTime: after.t, afterId: after.id } : {}),
    })
  ).map((raw) => mapRow(paymentsTable, raw));
  const items = rows.slice(0, query.limit);
  const last = items.at(-1);
  return {
    items: items.map(toPaymentInfo),
    nextCursor: rows.length > query.limit && last ? encodeCursor({ t: iso(last.createdAt) as string, id: last.id }) : null,
  };
}

/**
 * POST /payments/:id/cancel: the sender only, from `pending` only. Round trips: read, the
 * conditional update (history row and payment.cancelled in the same statement), mark-sent: 3.
 * Losing a race with processing is 409, and the history shows only the winner's steps.
 */
export async function cancelPayment(ctx: PaymentsContext, me: Viewer, id: string, metadata: EventMetadata): Promise<PaymentInfo> {
  const db = (await ctx.database()).db;
  const [current] = await db
    .select()
    .from(paymentsTable)
    .where(and(eq(paymentsTable.id, id), visibleTo(me)));
  if (!current) throw notFound();
  if (current.senderId !== me.userId) throw new AppError("forbidden", "Only the sender can cancel a payment.");
  if (current.status !== "pending") throw new AppError("conflict", `The payment is ${current.status}; only a pending payment can be cancelled.`);
  const now = ctx.now();
  const event = paymentEvent("payment.cancelled", current, "cancelled", { ...metadata, actor: me.userId }, now);
  const row = await transition(ctx, db, {
    paymentId: id,
    from: "pending",
    to: "cancelled",
    now,
    where: eq(paymentsTable.senderId, me.userId),
    message: "cancelled by the sender",
    events: [event],
  });
  if (!row) throw new AppError("conflict", "The payment is no longer pending; it cannot be cancelled.");
  return toPaymentInfo(row);
}
