import { readProfileConfig } from "./config";
import { profileContextFromConfig } from "./context";
import { createProfileApp } from "./routes";

/** The profile service as deployed: configuration from the environment, connections on first use. */
export const profileContext = profileContextFromConfig(readProfileConfig());
export const profileApp = createProfileApp(profileContext);
