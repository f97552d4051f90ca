import { readAuthConfig } from "./config";
import { authContextFromConfig } from "./context";
import { createAuthApp } from "./routes";

/** The auth service as deployed: configuration from the environment, connections on first use. */
export const authContext = authContextFromConfig(readAuthConfig());
export const authApp = createAuthApp(authContext);
