import { authContext } from "@enclave/auth/deployed";
import { createAuthApp } from "@enclave/auth/routes";
import { handle, installFetchGlobals } from "@enclave/core/lambda-http";

// Hono builds responses with the global Response/Headers: the light ones keep Node's fetch
// implementation off the cold start.
installFetchGlobals();

export const handler = handle(createAuthApp(authContext));
