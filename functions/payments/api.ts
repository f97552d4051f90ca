import { handle, installFetchGlobals } from "@enclave/core/lambda-http";
import { paymentsContext } from "@enclave/payments/deployed";
import { createPaymentsApp } from "@enclave/payments/routes";

// Hono builds responses with the global Response/Headers: the light ones keep Node's fetch
// implementation off the cold start.
installFetchGlobals();

export const handler = handle(createPaymentsApp(paymentsContext));
