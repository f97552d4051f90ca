export class ConfigError extends Error {
  /**
   * `service` is the service whose configuration this is, when known: one process may read
   * several (the local runtime reads every service's), and a variable alone does not say whose.
   */
  constructor(
    readonly problems: string[],
    readonly service?: string,
  ) {
    super(`Invalid ${service ? `${service} ` : ""}configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}
