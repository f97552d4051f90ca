import { createServiceApp, eventMetadataOf, idempotencyKeyOf, respondCreated, Uuid, userOf } from "@enclave/core";
import * as z from "zod/mini";
import type { PaymentsContext } from "./context";
import { paymentsManifest } from "./manifest";
import {
  CreatePaymentInput,
  cancelPayment,
  createPayment,
  getPayment,
  ListPaymentsQuery,
  listPayments,
  listTransactions,
  PaymentInfo,
  PaymentPage,
  TransactionInfo,
} from "./payment";

const PaymentEnvelope = z.object({ payment: PaymentInfo }).register(z.globalRegistry, { id: "PaymentResponse" });
const TransactionList = z.object({ items: z.array(TransactionInfo) }).register(z.globalRegistry, {
  id: "TransactionList",
  description: "A payment's status history, oldest first.",
});
const IdParams = z.object({ id: Uuid });
/** What idempotencyKeyOf accepts, for the docs (a quoted structured-field string is accepted too). */
const IdempotencyKey = z
  .string()
  .check(z.minLength(1), z.maxLength(255), z.regex(/^[\x21-\x7e]+$/))
  .register(z.globalRegistry, { examples: ["4f1c2e9a-6b7d-4e8f-9a0b-1c2d3e4f5a6b"] });

const description =
  "Payments between users: instant, scheduled and recurring, processed in the background by a payment provider, each with its status history. Creating a payment is idempotent per `Idempotency-Key`.";

export function createPaymentsApp(ctx: PaymentsContext) {
  const { app, routes } = createServiceApp({
    name: "payments",
    prefix: paymentsManifest.prefix,
    version: "1",
    database: ctx.database,
    verifier: ctx.verifier,
    docs: { description },
  });

  routes
    .add(
      {
        method: "post",
        path: "/",
        operationId: "createPayment",
        summary: "Pay another user (instant, scheduled or recurring)",
        description:
          "Creates a `pending` payment from the caller to the user with `recipientEmail` and publishes `payment.created`; processing happens in the background (poll the payment or its transactions). Retrying with the same `Idempotency-Key` and body answers the first result again, without paying twice; keys are kept at least 24 hours.",
        access: "user",
        headers: {
          "Idempotency-Key": {
            required: true,
            description:
              "Unique per intended payment (e.g. a UUID), 1 to 255 printable ASCII characters. Retrying with the same key and body returns the first result; a different body is 409.",
            schema: IdempotencyKey,
          },
        },
        body: CreatePaymentInput,
        responses: {
          201: {
            description: "Created (or the replay of the first result for this key)",
            schema: PaymentEnvelope,
            headers: {
              "Idempotent-Replayed": {
                description: "`true` when this is the stored answer to an earlier request with the same key; absent otherwise.",
                schema: z.literal("true"),
              },
            },
          },
          400: {
            description:
              "`validation_failed`: the body or the `Idempotency-Key` is invalid, `scheduledFor` is not in the future, or the recipient is the caller; `malformed_json`: the body is not JSON",
          },
          404: { description: "`not_found`: no user has the recipient's email" },
          409: { description: "`conflict`: the key was used with a different body" },
          503: { description: "`unavailable`: the database or the user directory (auth) is unavailable; nothing was created" },
        },
      },
      async (c, { body, principal }) => {
        const { payment, replayed } = await createPayment(ctx, userOf(principal).userId, idempotencyKeyOf(c), body, eventMetadataOf(c));
        return respondCreated(c, { payment }, replayed);
      },
    )
    .add(
      {
        method: "get",
        path: "/",
        operationId: "listPayments",
        summary: "The caller's payments, sent or received, newest first",
        description: "A page of the payments the caller sent or received, newest first, optionally only those in one status or of one side.",
        access: "user",
        query: ListPaymentsQuery,
        responses: { 200: { description: "A page", schema: PaymentPage } },
      },
      async (c, { query, principal }) => c.json(await listPayments(ctx, userOf(principal), query)),
    )
    .add(
      {
        method: "get",
        path: "/:id",
        operationId: "getPayment",
        summary: "A payment (its sender, its recipient, or an ADMIN)",
        description: "One payment, for its sender, its recipient and administrators; to anyone else it does not exist (404).",
        access: "user",
        params: IdParams,
        responses: { 200: { description: "The payment", schema: PaymentEnvelope }, 404: { description: "`not_found`: no such payment (or not yours)" } },
      },
      async (c, { params, principal }) => c.json({ payment: await getPayment(ctx, userOf(principal), params.id) }),
    )
    .add(
      {
        method: "get",
        path: "/:id/transactions",
        operationId: "listPaymentTransactions",
        summary: "A payment's status history, oldest first",
        description: "Every status the payment went through, oldest first, for its sender, its recipient and administrators.",
        access: "user",
        params: IdParams,
        responses: {
          200: { description: "The history", schema: TransactionList },
          404: { description: "`not_found`: no such payment (or not yours)" },
        },
      },
      async (c, { params, principal }) => c.json({ items: await listTransactions(ctx, userOf(principal), params.id) }),
    )
    .add(
      {
        method: "post",
        path: "/:id/cancel",
        operationId: "cancelPayment",
        summary: "Cancel a pending payment (its sender only)",
        description:
          "Cancels a payment that is still `pending` (a scheduled one before it is due, say) and publishes `payment.cancelled`. Only its sender may.",
        access: "user",
        params: IdParams,
        responses: {
          200: { description: "Cancelled", schema: PaymentEnvelope },
          403: { description: "`forbidden`: the caller is not the sender (or not a signed-in user)" },
          404: { description: "`not_found`: no such payment (or not yours)" },
          409: { description: "`conflict`: the payment is no longer pending" },
        },
      },
      async (c, { params, principal }) => c.json({ payment: await cancelPayment(ctx, userOf(principal), params.id, eventMetadataOf(c)) }),
    );
  return app;
}
