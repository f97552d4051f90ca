import { readAdminConfig } from "./config";
import { adminContextFromConfig } from "./context";
import { createAdminApp } from "./routes";

/** The admin service as deployed: configuration from the environment, connections on first use. */
export const adminContext = adminContextFromConfig(readAdminConfig());
export const adminApp = createAdminApp(adminContext);
