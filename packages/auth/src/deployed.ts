import { readAuthConfig } from "./config";
import { authContextFromConfig } from "./context";

/** The auth service as deployed: configuration from the environment, connections on first use. */
export const authConfig = readAuthConfig();
export const authContext = authContextFromConfig(authConfig);
