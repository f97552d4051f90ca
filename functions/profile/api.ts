import { handle, installFetchGlobals } from "@enclave/core/lambda-http";
import { profileContext } from "@enclave/profile/deployed";
import { createProfileApp } from "@enclave/profile/routes";

// Hono builds responses with the global Response/Headers: the light ones keep Node's fetch
// implementation off the cold start.
installFetchGlobals();

export const handler = handle(createProfileApp(profileContext));
