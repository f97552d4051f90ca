import { changed, type Db, describeError, type EventMetadata, log, rowsOf, uuidv7 } from "@enclave/core";
import { and, asc, eq, isNull, lt, lte, or, type SQLWrapper, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { PaymentsContext } from "./context";
import { type PaymentRow, paymentEvent } from "./payment";
import { idempotencyKeysTable, type PaymentInterval, paymentsInbox, paymentsTable } from "./payments.sql";
import type { ChargeResult } from "./provider";
import { appendTransaction, transition } from "./state-machine";

export type ProcessOutcome = "completed" | "failed" | "skipped" | "stalled";

/**
 * pending → processing, if the payment is pending and due (instant, or its time has come), in
 * one statement with its history row. With `delivery`, the event is recorded in the inbox in
 * the same statement and a delivery already recorded claims nothing (redeliveries are no-ops).
 */
async function claim(ctx: PaymentsContext, db: Db, paymentId: string, delivery?: { subscriber: string; eventId: string }): Promise<PaymentRow | undefined> {
  const now = ctx.now();
  const due = or(isNull(paymentsTable.scheduledFor), lte(paymentsTable.scheduledFor, now));
  const firstDelivery = delivery
    ? sql`not exists (select 1 from ${paymentsInbox} where "subscriber" = ${delivery.subscriber} and "event_id" = ${delivery.eventId}::uuid)`
    : undefined;
  return transition(ctx, db, {
    paymentId,
    from: "pending",
    to: "processing",
    now,
    where: and(due, firstDelivery),
    message: "sent to the payment provider",
    events: [],
    also: delivery
      ? [sql`insert into ${paymentsInbox} ("subscriber", "event_id") values (${delivery.subscriber}, ${delivery.eventId}::uuid) on conflict do nothing`]
      : [],
  });
}

/**
 * Charges a claimed payment and records the outcome: processing → completed | failed, history
 * row and event in one statement. A provider error leaves it `processing`; the `due` cron
 * retries it once its lease has run out (the provider dedupes on the payment id).
 */
async function settle(ctx: PaymentsContext, db: Db, payment: PaymentRow, correlationId: string): Promise<ProcessOutcome> {
  let result: ChargeResult;
  try {
    result = await ctx.provider.charge({
      paymentId: payment.id,
      senderId: payment.senderId,
      recipientId: payment.recipientId,
      amount: payment.amount,
      currency: payment.currency,
    });
  } catch (error) {
    log("warn", "payment provider failed; the payment will be retried", { paymentId: payment.id, provider: ctx.provider.name, ...describeError(error) });
    return "stalled";
  }
  const now = ctx.now();
  const metadata: EventMetadata = { correlationId, actor: null };
  const completed = result.outcome === "succeeded";
  const reason = result.outcome === "declined" ? result.reason : null;
  const event = paymentEvent(completed ? "payment.completed" : "payment.failed", payment, completed ? "completed" : "failed", metadata, now);
  const row = await transition(ctx, db, {
    paymentId: payment.id,
    from: "processing",
    to: completed ? "completed" : "failed",
    now,
    set: {
      pspTransactionId: result.transactionId,
      pspStatus: result.status,
      ...(completed ? { completedAt: now } : { failureReason: reason }),
    },
    message: completed ? "completed by the payment provider" : `declined: ${reason}`,
    pspTransactionId: result.transactionId,
    pspStatus: result.status,
    events: [event],
  });
  // Nothing changed: another worker (a cron retry) settled it first.
  if (!row) return "skipped";
  return completed ? "completed" : "failed";
}

/**
 * What the payment.created consumer does: claim, charge, settle. A scheduled payment that is
 * not due yet, a cancelled one, or a repeated delivery is skipped; the `due` cron takes over
 * scheduled payments when their time comes.
 */
export async function processPayment(
  ctx: PaymentsContext,
  paymentId: string,
  options: { correlationId: string; delivery?: { subscriber: string; eventId: string } },
): Promise<ProcessOutcome> {
  const db = (await ctx.database()).db;
  const claimed = await claim(ctx, db, paymentId, options.delivery);
  if (!claimed) return "skipped";
  return settle(ctx, db, claimed, options.correlationId);
}

/** Adds `n` intervals to the series anchor. Months keep the anchor's day, clamped to the month's length (Jan 31 → Feb 28 → Mar 31). */
export function addInterval(anchor: Date, interval: PaymentInterval, n: number): Date {
  if (interval === "daily") return new Date(anchor.getTime() + n * 86_400_000);
  if (interval === "weekly") return new Date(anchor.getTime() + n * 7 * 86_400_000);
  const month = anchor.getUTCMonth() + n;
  const year = anchor.getUTCFullYear() + Math.floor(month / 12);
  const monthOfYear = ((month % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, monthOfYear + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      year,
      monthOfYear,
      Math.min(anchor.getUTCDate(), lastDay),
      anchor.getUTCHours(),
      anchor.getUTCMinutes(),
      anchor.getUTCSeconds(),
      anchor.getUTCMilliseconds(),
    ),
  );
}

/**
 * `id = any(array(<select … for update skip locked>))`: the locking select runs once, as an
 * init plan. As `id in (<select>)` the planner may rescan it per row, and each rescan skips
 * the rows this very statement already updated, so the LIMIT would not bound the batch.
 */
const lockedIds = (select: SQLWrapper) => sql`${paymentsTable.id} = any(array(${select}))`;

/**
 * Due pending payments → processing, in one statement. `FOR UPDATE SKIP LOCKED` lets
 * overlapping runs split the work instead of taking the same payments.
 */
async function claimDue(ctx: PaymentsContext, db: Db): Promise<PaymentRow[]> {
  const now = ctx.now();
  const due = db
    .select({ id: paymentsTable.id })
    .from(paymentsTable)
    .where(and(eq(paymentsTable.status, "pending"), lte(paymentsTable.dueAt, now)))
    .orderBy(asc(paymentsTable.dueAt))
    .limit(ctx.processing.batchSize)
    .for("update", { skipLocked: true });
  return ctx.events.commit(db, {
    table: paymentsTable,
    change: db
      .update(paymentsTable)
      .set({ status: "processing", updatedAt: now })
      .where(and(lockedIds(due), eq(paymentsTable.status, "pending")))
      .returning(),
    also: [appendTransaction({ status: "processing", message: "sent to the payment provider", now, id: sql`gen_random_uuid()` })],
    events: [],
  });
}

/**
 * Payments stuck in `processing` past their lease (a crash, or a provider outage): the lease is
 * renewed for this run (so an overlapping run skips them) and they are charged again.
 */
async function reclaimStalled(ctx: PaymentsContext, db: Db): Promise<PaymentRow[]> {
  const now = ctx.now();
  const stalled = db
    .select({ id: paymentsTable.id })
    .from(paymentsTable)
    .where(and(eq(paymentsTable.status, "processing"), lt(paymentsTable.updatedAt, new Date(now.getTime() - ctx.processing.leaseMs))))
    .orderBy(asc(paymentsTable.updatedAt))
    .limit(ctx.processing.batchSize)
    .for("update", { skipLocked: true });
  return db
    .update(paymentsTable)
    .set({ updatedAt: now })
    .where(and(lockedIds(stalled), eq(paymentsTable.status, "processing")))
    .returning();
}

const previous = alias(paymentsTable, "first_occurrence");

/**
 * The next occurrence of every completed recurring payment that has none yet: a pending payment
 * scheduled one interval after the last (counted from the series' first occurrence), with
 * payment.created. The unique (series_id, occurrence) index makes overlapping runs create it
 * once; the event is written only by the run whose insert went in.
 */
async function createNextOccurrences(ctx: PaymentsContext, db: Db, correlationId: string): Promise<number> {
  const candidates = await db
    .select({ payment: paymentsTable, anchor: previous.scheduledFor })
    .from(paymentsTable)
    .innerJoin(previous, eq(previous.id, paymentsTable.seriesId))
    .where(and(eq(paymentsTable.type, "recurring"), eq(paymentsTable.status, "completed"), isNull(paymentsTable.nextPaymentId)))
    .orderBy(asc(paymentsTable.completedAt))
    .limit(ctx.processing.batchSize);
  let created = 0;
  for (const { payment, anchor } of candidates) {
    if (!payment.interval || !payment.seriesId || !payment.occurrence || !anchor) continue;
    const now = ctx.now();
    const scheduledFor = addInterval(anchor, payment.interval, payment.occurrence);
    const next: PaymentRow = {
      ...payment,
      id: uuidv7(now.getTime()),
      status: "pending",
      metadata: { previousPaymentId: payment.id },
      scheduledFor,
      occurrence: payment.occurrence + 1,
      nextPaymentId: null,
      dueAt: scheduledFor,
      pspTransactionId: null,
      pspStatus: null,
      failureReason: null,
      completedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    const event = paymentEvent("payment.created", next, "pending", { correlationId, actor: null }, now);
    const [inserted] = await ctx.events.commit(db, {
      table: paymentsTable,
      change: db
        .insert(paymentsTable)
        .values(next)
        .onConflictDoNothing({ target: [paymentsTable.seriesId, paymentsTable.occurrence] })
        .returning(),
      also: [
        appendTransaction({ status: "pending", message: `occurrence ${next.occurrence} of a recurring payment`, now }),
        sql`update ${paymentsTable} set "next_payment_id" = ${changed}."id" from ${changed} where ${paymentsTable}."id" = ${payment.id}::uuid`,
      ],
      events: [event],
    });
    if (inserted) created++;
  }
  return created;
}

export interface DueRun {
  claimed: number;
  retried: number;
  completed: number;
  failed: number;
  stalled: number;
  nextOccurrences: number;
}

/** The `due` cron: due payments, stalled ones, then next occurrences of recurring ones. */
export async function runDue(ctx: PaymentsContext): Promise<DueRun> {
  const db = (await ctx.database()).db;
  const correlationId = `cron:due:${uuidv7()}`;
  const claimed = await claimDue(ctx, db);
  const retried = await reclaimStalled(ctx, db);
  const run: DueRun = { claimed: claimed.length, retried: retried.length, completed: 0, failed: 0, stalled: 0, nextOccurrences: 0 };
  for (const payment of [...claimed, ...retried]) {
    // One payment's failure must not hold up the others: it stays `processing` and is retried after its lease.
    const outcome = await settle(ctx, db, payment, correlationId).catch((error) => {
      log("error", "settling a payment failed; it will be retried", { paymentId: payment.id, ...describeError(error) });
      return "stalled" as const;
    });
    if (outcome === "completed" || outcome === "failed" || outcome === "stalled") run[outcome]++;
  }
  run.nextOccurrences = await createNextOccurrences(ctx, db, correlationId);
  return run;
}

/** The `idempotency-expiry` cron: keys past their 24 hours, in batches. */
export async function expireIdempotencyKeys(ctx: PaymentsContext, batchSize = 1_000): Promise<{ deleted: number }> {
  const db = (await ctx.database()).db;
  const now = ctx.now().toISOString();
  let deleted = 0;
  for (let round = 0; round < 100; round++) {
    const result = await db.execute(
      sql`delete from ${idempotencyKeysTable} where ("caller_id", "key") in (
        select "caller_id", "key" from ${idempotencyKeysTable} where "expires_at" < ${now}::timestamptz limit ${batchSize}) returning 1`,
    );
    const count = rowsOf(result).length;
    deleted += count;
    if (count < batchSize) break;
  }
  return { deleted };
}
