import { readAdminConfig } from "./config";
import { adminContextFromConfig } from "./context";

/** The admin service as deployed: configuration from the environment, connections on first use. */
export const adminConfig = readAdminConfig();
export const adminContext = adminContextFromConfig(adminConfig);
