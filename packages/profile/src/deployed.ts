import { readProfileConfig } from "./config";
import { profileContextFromConfig } from "./context";

/** The profile service as deployed: configuration from the environment, connections on first use. */
export const profileConfig = readProfileConfig();
export const profileContext = profileContextFromConfig(profileConfig);
