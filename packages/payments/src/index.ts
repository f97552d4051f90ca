import { defineService } from "@enclave/core";
import type { PaymentsContext } from "./context";
import { paymentsJobs } from "./jobs";
import { paymentsManifest } from "./manifest";
import { createPaymentsApp } from "./routes";

export const paymentsService = defineService<PaymentsContext>({
  manifest: paymentsManifest,
  jobs: paymentsJobs,
  createApp: createPaymentsApp,
  // Payments holds no reference data; the development users come from auth's seed.
  seeds: {},
});

export type { PaymentsContext } from "./context";
export { paymentsContextFromConfig } from "./context";
