import { defineService } from "@enclave/core";
import type { PaymentsContext } from "./context";
import { paymentsJobs } from "./jobs";
import { paymentsManifest } from "./manifest";
import { createPaymentsApp } from "./routes";
import { paymentsSeeds } from "./seed";

export const paymentsService = defineService<PaymentsContext>({
  manifest: paymentsManifest,
  jobs: paymentsJobs,
  createApp: createPaymentsApp,
  seeds: paymentsSeeds,
});

export type { PaymentsContext } from "./context";
export { paymentsContextFromConfig } from "./context";
