import { handle, installFetchGlobals } from "@enclave/core/lambda-http";
import { paymentsApp } from "@enclave/payments/lambda";

// Hono builds responses with the global Response/Headers: the light ones keep Node's fetch
// implementation off the cold start.
installFetchGlobals();

export const handler = handle(paymentsApp);
