import * as z from "zod/mini";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parses environment variables with a zod schema. A missing or invalid variable stops
 * start-up with a message naming it; values are never echoed (they may be secrets).
 */
export function parseEnv<S extends z.ZodMiniObject>(schema: S, env: Env): z.infer<S> {
  const result = z.safeParse(schema, env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".") || "(environment)";
    return issue.code === "invalid_type" && env[name] === undefined ? `${name} is required` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** `<SERVICE>_DATABASE_URL`, falling back to `DATABASE_URL`. */
export function databaseUrlFor(service: string, env: Env): string | undefined {
  return env[`${service.toUpperCase()}_DATABASE_URL`] || env.DATABASE_URL || undefined;
}

export const stageSchema = z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "must be lower-case letters, digits and dashes"));

/** Boolean-ish environment values: "1", "true", "yes" are true. */
export const envFlag = z.pipe(
  z.optional(z.string()),
  z.transform((value) => value !== undefined && /^(1|true|yes)$/i.test(value)),
);
