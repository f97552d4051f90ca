import { changed, createEvent, type Db, type EventEnvelope, type EventMetadata, iso, uuidv7 } from "@enclave/core";
import { and, eq, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import type { PaymentsContext } from "./context";
import { type PaymentStatus, paymentIntervals, paymentStatuses, paymentsTable, paymentTransactionsTable, paymentTypes } from "./payments.sql";

export type PaymentRow = typeof paymentsTable.$inferSelect;

/** `payment` of API.md. */
export const PaymentInfo = z.object({
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
});
export type PaymentInfo = z.output<typeof PaymentInfo>;

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

/** The state machine. Anything else is refused before it reaches the database. */
const transitions: Record<PaymentStatus, PaymentStatus[]> = {
  pending: ["processing", "cancelled"],
  processing: ["completed", "failed"],
  completed: [],
  failed: [],
  cancelled: [],
};

/** SQL appending a history row for the payment the commit `changed` (one of its `also` statements). */
export function appendTransaction(values: { status: SQL | PaymentStatus; message: string | null; pspTransactionId?: string | null; now: Date; id?: SQL }) {
  const status = typeof values.status === "string" ? sql`${values.status}` : values.status;
  return sql`insert into ${paymentTransactionsTable} ("id", "payment_id", "status", "status_message", "psp_transaction_id", "created_at")
    select ${values.id ?? sql`${uuidv7(values.now.getTime())}::uuid`}, "id", ${status}, ${values.message}, ${values.pspTransactionId ?? null}, ${values.now.toISOString()}::timestamptz from ${changed}`;
}

export interface Transition {
  paymentId: string;
  from: PaymentStatus;
  to: PaymentStatus;
  now: Date;
  /** Other columns to set with the status. */
  set?: Partial<Pick<PaymentRow, "pspTransactionId" | "pspStatus" | "failureReason" | "completedAt">>;
  /** More conditions, e.g. "and the caller is the sender". */
  where?: SQL;
  message: string | null;
  pspTransactionId?: string | null;
  /** Written to the outbox only if the transition happened. */
  events: EventEnvelope[];
  /** More statements of the same commit (they may select from `changed`). */
  also?: SQL[];
}

/**
 * One state-machine step, in ONE statement: a conditional update from the expected status, the
 * history row and the events. Returns the updated payment, or undefined when the payment was
 * not in `from` any more (someone else moved it first): the caller decides what that means.
 */
export async function transition(ctx: PaymentsContext, db: Db, step: Transition): Promise<PaymentRow | undefined> {
  if (!transitions[step.from].includes(step.to)) throw new Error(`illegal payment transition ${step.from} → ${step.to}`);
  const [row] = await ctx.events.commit(db, {
    table: paymentsTable,
    change: db
      .update(paymentsTable)
      .set({ ...step.set, status: step.to, updatedAt: step.now })
      .where(and(eq(paymentsTable.id, step.paymentId), eq(paymentsTable.status, step.from), step.where))
      .returning(),
    also: [appendTransaction({ status: step.to, message: step.message, pspTransactionId: step.pspTransactionId ?? null, now: step.now }), ...(step.also ?? [])],
    events: step.events,
  });
  return row;
}
