import { createServiceApp, eventMetadataOf, idempotencyKeyOf, pageOf, respondCreated, Uuid, userOf } from "@enclave/core";
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
  TransactionInfo,
} from "./payment";

const PaymentEnvelope = z.object({ payment: PaymentInfo });
const IdParams = z.object({ id: Uuid });

export function createPaymentsApp(ctx: PaymentsContext) {
  const { app, routes } = createServiceApp({ name: "payments", prefix: paymentsManifest.prefix, version: "1", database: ctx.database, verifier: ctx.verifier });

  routes
    .add(
      {
        method: "post",
        path: "/",
        summary: "Pay another user (instant, scheduled or recurring)",
        access: "user",
        headers: {
          "Idempotency-Key": {
            required: true,
            description: "Unique per intended payment (e.g. a UUID). Retrying with the same key and body returns the first result; a different body is 409.",
          },
        },
        body: CreatePaymentInput,
        responses: {
          201: { description: "Created (or the replay of the first result for this key)", schema: PaymentEnvelope },
          400: { description: "Invalid body or key, or paying oneself" },
          404: { description: "No user has the recipient's email" },
          409: { description: "The key was used with a different body" },
          503: { description: "The user directory (auth) is unavailable; nothing was created" },
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
        summary: "The caller's payments, sent or received, newest first",
        access: "user",
        query: ListPaymentsQuery,
        responses: { 200: { description: "A page", schema: pageOf(PaymentInfo) } },
      },
      async (c, { query, principal }) => c.json(await listPayments(ctx, userOf(principal), query)),
    )
    .add(
      {
        method: "get",
        path: "/:id",
        summary: "A payment (its sender, its recipient, or an ADMIN)",
        access: "user",
        params: IdParams,
        responses: { 200: { description: "The payment", schema: PaymentEnvelope }, 404: { description: "No such payment (or not yours)" } },
      },
      async (c, { params, principal }) => c.json({ payment: await getPayment(ctx, userOf(principal), params.id) }),
    )
    .add(
      {
        method: "get",
        path: "/:id/transactions",
        summary: "A payment's status history, oldest first",
        access: "user",
        params: IdParams,
        responses: {
          200: { description: "The history", schema: z.object({ items: z.array(TransactionInfo) }) },
          404: { description: "No such payment (or not yours)" },
        },
      },
      async (c, { params, principal }) => c.json({ items: await listTransactions(ctx, userOf(principal), params.id) }),
    )
    .add(
      {
        method: "post",
        path: "/:id/cancel",
        summary: "Cancel a pending payment (its sender only)",
        access: "user",
        params: IdParams,
        responses: {
          200: { description: "Cancelled", schema: PaymentEnvelope },
          403: { description: "Not the sender" },
          404: { description: "No such payment (or not yours)" },
          409: { description: "Not pending any more" },
        },
      },
      async (c, { params, principal }) => c.json({ payment: await cancelPayment(ctx, userOf(principal), params.id, eventMetadataOf(c)) }),
    );
  return app;
}
