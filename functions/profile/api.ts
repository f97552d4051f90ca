import { handle, installFetchGlobals } from "@enclave/core/lambda-http";
import { profileApp } from "@enclave/profile/lambda";

// Hono builds responses with the global Response/Headers: the light ones keep Node's fetch
// implementation off the cold start.
installFetchGlobals();

export const handler = handle(profileApp);
