import { createHash } from "node:crypto";
import {
  AppError,
  changed,
  decodeCursor,
  Email,
  type EventMetadata,
  encodeCursor,
  IsoTime,
  iso,
  Limit,
  mapRow,
  type Principal,
  pgConstraint,
  pgErrorCode,
  rowsOf,
  userOf,
  uuidv7,
} from "@enclave/core";
import { and, asc, desc, eq, or, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import type { PaymentsContext } from "./context";
import { Currency, Money } from "./money";
import {
  idempotencyKeysTable,
  type PaymentInterval,
  paymentIntervals,
  paymentStatuses,
  paymentsTable,
  paymentTransactionsTable,
  paymentTypes,
} from "./payments.sql";
import { appendTransaction, type PaymentInfo, type PaymentRow, paymentEvent, toPaymentInfo, transition } from "./state";

/** An unpaired UTF-16 surrogate: JSON can carry one, but neither UTF-8 text nor jsonb can hold it. */
const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const Text = (max: number) =>
  z.string().check(
    z.trim(),
    z.maxLength(max, `must be at most ${max} characters`),
    z.regex(/^[^\p{Cc}]*$/u, "must not contain control characters"),
    z.refine((text) => !unpairedSurrogate.test(text), "must be valid Unicode text (no unpaired surrogates)"),
  );

export const CreatePaymentInput = z.strictObject({
  recipientEmail: Email,
  amount: Money,
  currency: z._default(Currency, "USD"),
  type: z._default(z.enum(paymentTypes), "instant"),
  description: z.optional(z.nullable(Text(500))),
  scheduledFor: z.optional(IsoTime),
  interval: z.optional(z.enum(paymentIntervals)),
});
export type CreatePaymentInput = z.output<typeof CreatePaymentInput>;

export const ListPaymentsQuery = z.object({
  limit: Limit,
  cursor: z.optional(z.string().check(z.maxLength(512))),
  status: z.optional(z.enum(paymentStatuses)),
  role: z.optional(z.enum(["sender", "recipient"])),
});
export type ListPaymentsQuery = z.output<typeof ListPaymentsQuery>;

export const TransactionInfo = z.object({
  id: z.string(),
  paymentId: z.string(),
  status: z.enum(paymentStatuses),
  statusMessage: z.nullable(z.string()),
  pspTransactionId: z.nullable(z.string()),
  createdAt: z.string(),
});
export type TransactionInfo = z.output<typeof TransactionInfo>;

/** The Idempotency-Key header: a bare token or a structured-field string (`"…"`, IETF draft). */
export function parseIdempotencyKey(header: string | undefined): string {
  const invalid = (message: string) =>
    new AppError("validation_failed", "The Idempotency-Key header is not valid.", { details: [{ path: "Idempotency-Key", message }] });
  if (header === undefined || header.trim() === "") throw invalid("is required");
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length < 1 || key.length > 255) throw invalid("must be 1 to 255 characters");
  if (!/^[\x21-\x7e]+$/.test(key)) throw invalid("must be printable ASCII without spaces");
  return key;
}

const invalid = (path: string, message: string) => new AppError("validation_failed", "The request body is not valid.", { details: [{ path, message }] });

/** Checks that need no clock: which fields go with which type. */
function checkShape(input: CreatePaymentInput) {
  if (input.type === "instant" && input.scheduledFor !== undefined) throw invalid("scheduledFor", "is only for scheduled and recurring payments");
  if (input.type !== "recurring" && input.interval !== undefined) throw invalid("interval", "is only for recurring payments");
  if (input.type === "scheduled" && input.scheduledFor === undefined) throw invalid("scheduledFor", "is required for a scheduled payment");
  if (input.type === "recurring" && input.interval === undefined) throw invalid("interval", "is required for a recurring payment (daily, weekly or monthly)");
  if (input.scheduledFor !== undefined && !isRealTime(input.scheduledFor)) throw invalid("scheduledFor", "must be a valid time");
}

/** IsoTime checks the shape; this checks the calendar (no February 30th, no hour 25). */
function isRealTime(value: string): boolean {
  const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(value);
  if (!parts || Number.isNaN(Date.parse(value))) return false;
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59;
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

export interface CreateResult {
  status: number;
  body: { payment: PaymentInfo };
  replayed: boolean;
}

function replay(stored: typeof idempotencyKeysTable.$inferSelect, fingerprint: string): CreateResult {
  if (stored.fingerprint !== fingerprint) {
    throw new AppError("conflict", "This Idempotency-Key was already used with a different request.", {
      details: [{ path: "Idempotency-Key", message: "reused with a different body" }],
    });
  }
  return { status: stored.responseStatus, body: stored.responseBody as CreateResult["body"], replayed: true };
}

/**
 * POST /payments. Round trips: the key lookup, one statement (payment, first history row,
 * idempotency record and payment.created), and the relay's mark-sent: 3. A replay costs 1.
 * The recipient lookup is an HTTP call to auth (cached), made only when the key is new.
 */
export async function createPayment(
  ctx: PaymentsContext,
  principal: Principal | undefined,
  key: string,
  input: CreatePaymentInput,
  metadata: EventMetadata,
): Promise<CreateResult> {
  const me = userOf(principal);
  checkShape(input);
  const db = (await ctx.database()).db;
  const fingerprint = fingerprintOf(input);
  const lookupKey = () =>
    db
      .select()
      .from(idempotencyKeysTable)
      .where(and(eq(idempotencyKeysTable.callerId, me.userId), eq(idempotencyKeysTable.key, key)));

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
  if (recipient.id === me.userId) throw invalid("recipientEmail", "you cannot pay yourself");

  const id = uuidv7(now.getTime());
  const row: PaymentRow = {
    id,
    senderId: me.userId,
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
  const result: CreateResult = { status: 201, body: { payment: toPaymentInfo(row) }, replayed: false };
  const event = paymentEvent("payment.created", row, "pending", { ...metadata, actor: me.userId }, now);
  const expiresAt = new Date(now.getTime() + ctx.idempotencyTtlMs);
  try {
    await ctx.events.commit(db, {
      table: paymentsTable,
      change: db.insert(paymentsTable).values(row).returning(),
      also: [
        appendTransaction({ status: "pending", message: "created", now }),
        sql`insert into ${idempotencyKeysTable} ("caller_id", "key", "fingerprint", "payment_id", "response_status", "response_body", "created_at", "expires_at")
          select ${me.userId}::uuid, ${key}, ${fingerprint}, "id", ${result.status}, ${JSON.stringify(result.body)}::jsonb, ${now.toISOString()}::timestamptz, ${expiresAt.toISOString()}::timestamptz from ${changed}`,
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
  return result;
}

const isAdmin = (principal: { role: string }) => principal.role === "ADMIN";
function visibleTo(me: ReturnType<typeof userOf>): SQL | undefined {
  return isAdmin(me) ? undefined : or(eq(paymentsTable.senderId, me.userId), eq(paymentsTable.recipientId, me.userId));
}
const notFound = () => new AppError("not_found", "No such payment.");

/** GET /payments/:id: one round trip. Someone else's payment is 404, as if it did not exist. */
export async function getPayment(ctx: PaymentsContext, principal: Principal | undefined, id: string): Promise<PaymentInfo> {
  const me = userOf(principal);
  const db = (await ctx.database()).db;
  const [row] = await db
    .select()
    .from(paymentsTable)
    .where(and(eq(paymentsTable.id, id), visibleTo(me)));
  if (!row) throw notFound();
  return toPaymentInfo(row);
}

/** GET /payments/:id/transactions: the history, oldest first, in one round trip. */
export async function listTransactions(ctx: PaymentsContext, principal: Principal | undefined, id: string): Promise<TransactionInfo[]> {
  const me = userOf(principal);
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
export async function listPayments(ctx: PaymentsContext, principal: Principal | undefined, query: ListPaymentsQuery) {
  const me = userOf(principal);
  const db = (await ctx.database()).db;
  const after = decodeCursor(query.cursor);
  const take = query.limit + 1;
  const branch = (party: typeof paymentsTable.senderId | typeof paymentsTable.recipientId) =>
    db
      .select()
      .from(paymentsTable)
      .where(
        and(
          eq(party, me.userId),
          query.status ? eq(paymentsTable.status, query.status) : undefined,
          after ? sql`(${paymentsTable.createdAt}, ${paymentsTable.id}) < (${after.t}::timestamptz, ${after.id}::uuid)` : undefined,
        ),
      )
      .orderBy(desc(paymentsTable.createdAt), desc(paymentsTable.id))
      .limit(take);
  let rows: PaymentRow[];
  if (query.role === "sender") rows = await branch(paymentsTable.senderId);
  else if (query.role === "recipient") rows = await branch(paymentsTable.recipientId);
  else {
    const result = await db.execute(
      sql`select * from ((${branch(paymentsTable.senderId)}) union all (${branch(paymentsTable.recipientId)})) as "mine" order by "created_at" desc, "id" desc limit ${take}`,
    );
    rows = rowsOf(result).map((raw) => mapRow(paymentsTable, raw));
  }
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
export async function cancelPayment(ctx: PaymentsContext, principal: Principal | undefined, id: string, metadata: EventMetadata): Promise<PaymentInfo> {
  const me = userOf(principal);
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
