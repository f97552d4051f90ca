import { outboxSweeper, type ServiceModule } from "@enclave/core";
import { processConsumer } from "./consumers/process";
import type { PaymentsContext } from "./context";
import { paymentsManifest } from "./manifest";
import { paymentsOutbox } from "./payments.sql";
import { expireIdempotencyKeys, runDue } from "./processing";
import { createPaymentsApp } from "./routes";

export const paymentsService: ServiceModule<PaymentsContext> = {
  manifest: paymentsManifest,
  outbox: paymentsOutbox,
  createApp: createPaymentsApp,
  consumers: { process: processConsumer },
  crons: {
    due: (ctx) => () => runDue(ctx),
    "outbox-sweeper": outboxSweeper(paymentsOutbox),
    "idempotency-expiry": (ctx) => () => expireIdempotencyKeys(ctx),
  },
  // Payments holds no reference data; the development users come from auth's seed.
  seeds: {},
};

export type { PaymentsContext } from "./context";
export { paymentsContextFromConfig } from "./context";
