import { changed, type Db, type EventEnvelope, uuidv7 } from "@enclave/core";
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { PaymentsContext } from "./context";
import type { PaymentRow } from "./payment";
import { type PaymentStatus, paymentsTable, paymentTransactionsTable } from "./payments.sql";

/** The state machine. Anything else is refused before it reaches the database. */
const transitions: Record<PaymentStatus, PaymentStatus[]> = {
  pending: ["processing", "cancelled"],
  processing: ["completed", "failed"],
  completed: [],
  failed: [],
  cancelled: [],
};

/** SQL appending a history row for the payment the commit `changed` (one of its `also` statements). */
export function appendTransaction(values: {
  status: SQL | PaymentStatus;
  message: string | null;
  pspTransactionId?: string | null;
  pspStatus?: string | null;
  now: Date;
  id?: SQL;
}) {
  const status = typeof values.status === "string" ? sql`${values.status}` : values.status;
  return sql`insert into ${paymentTransactionsTable} ("id", "payment_id", "status", "status_message", "psp_transaction_id", "psp_status", "created_at")
    select ${values.id ?? sql`${uuidv7(values.now.getTime())}::uuid`}, "id", ${status}, ${values.message}, ${values.pspTransactionId ?? null}, ${values.pspStatus ?? null}, ${values.now.toISOString()}::timestamptz from ${changed}`;
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
  /** The provider's transaction id and status, when the provider caused this change. */
  pspTransactionId?: string | null;
  pspStatus?: string | null;
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
    also: [
      appendTransaction({
        status: step.to,
        message: step.message,
        pspTransactionId: step.pspTransactionId ?? null,
        pspStatus: step.pspStatus ?? null,
        now: step.now,
      }),
      ...(step.also ?? []),
    ],
    events: step.events,
  });
  return row;
}
