import { changed, type EventEnvelope, type EventMetadata, type Seeds, uuidv7 } from "@enclave/core";
import { developmentPeople, type SeedPerson, stagingPeople } from "@enclave/core/seed";
import { type SQL, sql } from "drizzle-orm";
import type { PaymentsContext } from "./context";
import { type PaymentRow, paymentEvent } from "./payment";
import { type PaymentStatus, type PaymentType, paymentsTable, paymentTransactionsTable } from "./payments.sql";

/** A payment as a seed set holds it: where it ends up, and when, relative to the run. */
export interface SeededPayment {
  id: string;
  sender: SeedPerson;
  recipient: SeedPerson;
  amount: string;
  type: Exclude<PaymentType, "recurring">;
  description: string;
  status: PaymentStatus;
  /** Created this many hours before the run. */
  hoursAgo: number;
  /** Scheduled payments: due this many hours after the run (negative: before). */
  dueInHours?: number;
}

const { ada, grace, shop } = developmentPeople;
const { maria, tom, market } = stagingPeople;

/**
 * One payment in every status of the state machine. The pending one is scheduled weeks ahead and
 * the processing one waits for the `due` cron, which charges it again once its lease runs out (as
 * it would a payment whose processing was interrupted), so a running system moves it on.
 */
export const developmentPayments: SeededPayment[] = [
  {
    id: "01936d00-0000-7000-8000-0000000d0001",
    sender: ada,
    recipient: shop,
    amount: "4.20",
    type: "instant",
    description: "Sourdough loaf",
    status: "completed",
    hoursAgo: 144,
  },
  {
    id: "01936d00-0000-7000-8000-0000000d0002",
    sender: grace,
    recipient: ada,
    amount: "12.50",
    type: "instant",
    description: "Lunch",
    status: "completed",
    hoursAgo: 72,
  },
  {
    id: "01936d00-0000-7000-8000-0000000d0003",
    sender: ada,
    recipient: grace,
    amount: "12000.00",
    type: "instant",
    description: "Car deposit",
    status: "failed",
    hoursAgo: 48,
  },
  {
    id: "01936d00-0000-7000-8000-0000000d0004",
    sender: grace,
    recipient: shop,
    amount: "35.00",
    type: "scheduled",
    description: "Birthday cake order",
    status: "cancelled",
    hoursAgo: 24,
    dueInHours: 48,
  },
  {
    id: "01936d00-0000-7000-8000-0000000d0005",
    sender: grace,
    recipient: shop,
    amount: "8.90",
    type: "instant",
    description: "Coffee beans",
    status: "processing",
    hoursAgo: 1,
  },
  {
    id: "01936d00-0000-7000-8000-0000000d0006",
    sender: ada,
    recipient: grace,
    amount: "40.00",
    type: "scheduled",
    description: "Rent share",
    status: "pending",
    hoursAgo: 2,
    dueInHours: 24 * 14,
  },
];

export const stagingPayments: SeededPayment[] = [
  {
    id: "01936d00-0000-7000-8000-0000000e0001",
    sender: maria,
    recipient: market,
    amount: "23.40",
    type: "instant",
    description: "Weekly groceries",
    status: "completed",
    hoursAgo: 96,
  },
  {
    id: "01936d00-0000-7000-8000-0000000e0002",
    sender: tom,
    recipient: maria,
    amount: "15.00",
    type: "instant",
    description: "Concert ticket",
    status: "completed",
    hoursAgo: 30,
  },
  {
    id: "01936d00-0000-7000-8000-0000000e0003",
    sender: maria,
    recipient: tom,
    amount: "250.00",
    type: "scheduled",
    description: "Bike",
    status: "cancelled",
    hoursAgo: 20,
    dueInHours: 72,
  },
  {
    id: "01936d00-0000-7000-8000-0000000e0004",
    sender: tom,
    recipient: market,
    amount: "60.00",
    type: "scheduled",
    description: "Catering deposit",
    status: "pending",
    hoursAgo: 3,
    dueInHours: 24 * 7,
  },
];

type Step = { status: PaymentStatus; message: string; psp?: { id: string; status: string } };

/** The statuses a payment passes through to reach `status`, each with its history message. */
function pathTo(payment: SeededPayment, pspTransactionId: string): Step[] {
  const created = { status: "pending" as const, message: "created" };
  const sent = { status: "processing" as const, message: "sent to the payment provider" };
  switch (payment.status) {
    case "pending":
      return [created];
    case "processing":
      return [created, sent];
    case "completed":
      return [created, sent, { status: "completed", message: "completed by the payment provider", psp: { id: pspTransactionId, status: "succeeded" } }];
    case "failed":
      return [created, sent, { status: "failed", message: "declined: limit_exceeded", psp: { id: pspTransactionId, status: "declined" } }];
    case "cancelled":
      return [created, { status: "cancelled", message: "cancelled by the sender" }];
  }
}

/**
 * The history rows of the payment the commit inserts, in one insert: rows of one insert get their
 * `seq` in the order selected, while separate inserts of one statement run in no defined order.
 */
function history(steps: (Step & { at: Date })[]): SQL {
  const values = steps.map(
    (step, index) =>
      sql`(${index}::int, ${uuidv7(step.at.getTime())}::uuid, ${step.status}, ${step.message}, ${step.psp?.id ?? null}::text, ${step.psp?.status ?? null}::text, ${step.at.toISOString()}::timestamptz)`,
  );
  return sql`insert into ${paymentTransactionsTable} ("id", "payment_id", "status", "status_message", "psp_transaction_id", "psp_status", "created_at")
    select v."id", c."id", v."status", v."message", v."psp_id", v."psp_status", v."at" from ${changed} c
    cross join (values ${sql.join(values, sql`, `)}) as v("step", "id", "status", "message", "psp_id", "psp_status", "at") order by v."step"`;
}

const terminalEvent = { completed: "payment.completed", failed: "payment.failed", cancelled: "payment.cancelled" } as const;

/**
 * Each payment written in its final status with its whole history and its events, in one
 * statement, unless its id exists. They are written directly rather than driven through
 * processing: the provider decides outcomes asynchronously, and a seed must end in the status it
 * names. The events still go out, so the audit log shows the seeded payments like any others;
 * payment.created of a payment past `pending` is skipped by the processing consumer.
 */
async function seedPayments(ctx: PaymentsContext, payments: SeededPayment[], correlationId: string): Promise<void> {
  const db = (await ctx.database()).db;
  const runAt = ctx.now().getTime();
  const hour = 3_600_000;
  for (const payment of payments) {
    const createdAt = new Date(runAt - payment.hoursAgo * hour);
    const scheduledFor = payment.dueInHours === undefined ? null : new Date(runAt + payment.dueInHours * hour);
    const pspTransactionId = `sim_${payment.id.replaceAll("-", "")}`;
    const path = pathTo(payment, pspTransactionId);
    // Each step a minute after the previous one.
    const at = (step: number) => new Date(createdAt.getTime() + step * 60_000);
    const settledAt = at(path.length - 1);
    const settled = payment.status === "completed" || payment.status === "failed";
    const row: PaymentRow = {
      id: payment.id,
      senderId: payment.sender.id,
      recipientId: payment.recipient.id,
      amount: payment.amount,
      currency: "USD",
      status: payment.status,
      type: payment.type,
      description: payment.description,
      metadata: { seed: correlationId },
      scheduledFor,
      interval: null,
      seriesId: null,
      occurrence: null,
      nextPaymentId: null,
      dueAt: scheduledFor ?? createdAt,
      pspTransactionId: settled ? pspTransactionId : null,
      pspStatus: settled ? (payment.status === "completed" ? "succeeded" : "declined") : null,
      failureReason: payment.status === "failed" ? "limit_exceeded" : null,
      completedAt: payment.status === "completed" ? settledAt : null,
      createdAt,
      updatedAt: settledAt,
    };
    const metadata: EventMetadata = { correlationId, actor: null };
    const events: EventEnvelope[] = [paymentEvent("payment.created", row, "pending", { ...metadata, actor: payment.sender.id }, createdAt)];
    if (payment.status in terminalEvent) {
      const type = terminalEvent[payment.status as keyof typeof terminalEvent];
      events.push(paymentEvent(type, row, payment.status, type === "payment.cancelled" ? { ...metadata, actor: payment.sender.id } : metadata, settledAt));
    }
    await ctx.events.commit(db, {
      table: paymentsTable,
      change: db.insert(paymentsTable).values(row).onConflictDoNothing().returning(),
      also: [history(path.map((step, index) => ({ ...step, at: at(index) })))],
      events,
    });
  }
}

export const paymentsSeeds: Seeds<PaymentsContext> = {
  development: (ctx) => seedPayments(ctx, developmentPayments, "seed:development"),
  staging: (ctx) => seedPayments(ctx, stagingPayments, "seed:staging"),
};
