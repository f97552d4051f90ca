import { configureLog } from "./log";

// Request logs are noise in test output; errors still show.
configureLog({ level: "error" });
