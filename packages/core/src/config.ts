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
    // Whatever the check (type, enum, format), an unset variable is simply missing.
    return env[name] === undefined ? `${name} is required` : `${name}: ${describeIssue(issue)}`;
  });
  throw new ConfigError([...new Set(problems)]);
}

/**
 * What is wrong, from the schema's side only (expected type, allowed values, bounds), never the
 * value. zod/mini ships without messages ("Invalid input"), so the common cases are spelled out.
 */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.message && issue.message !== "Invalid input") return issue.message;
  switch (issue.code) {
    case "invalid_type":
      return issue.expected === "int" ? "must be an integer" : `must be a ${issue.expected}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => String(v)).join(", ")}`;
    case "too_small":
      return `must be at least ${String(issue.minimum)}${issue.origin === "string" ? " characters" : ""}`;
    case "too_big":
      return `must be at most ${String(issue.maximum)}${issue.origin === "string" ? " characters" : ""}`;
    case "invalid_format":
      return issue.format === "regex" ? "has the wrong format" : `must be a valid ${issue.format}`;
    default:
      return "is not valid";
  }
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
