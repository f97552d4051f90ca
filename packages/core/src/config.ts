import * as z from "zod/mini";
import { ConfigError } from "./config-error";
import { driverFor } from "./db/index";
import { isPrivateJwkJson, isPublicJwksJson } from "./keys";
import { withSealedSettings } from "./sealed-settings";

export { ConfigError, withSealedSettings };

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

function sealedSettingsOf(service: string, env: Env): Env {
  try {
    return withSealedSettings(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(error.problems, service);
    throw error;
  }
}

/** `<SERVICE>_DATABASE_URL`, falling back to `DATABASE_URL`. */
export function databaseUrlFor(service: string, env: Env): string | undefined {
  return env[`${service.toUpperCase()}_DATABASE_URL`] || env.DATABASE_URL || undefined;
}

export const stageSchema = z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "must be lower-case letters, digits and dashes"));

/**
 * DB_QUERY_TIMEOUT_MS, for the services and the local runtime alike: a statement outside a
 * transaction unanswered this long fails the request with 503 (below an API function's 10 s timeout).
 */
export const queryTimeoutSchema = z._default(z.coerce.number().check(z.int(), z.positive()), 8_000);

const commonEnv = z.object({
  STAGE: z._default(stageSchema, "local"),
  LOG_LEVEL: z._default(z.enum(["debug", "info", "warn", "error"]), "info"),
  EVENT_BUS_NAME: z._default(z.string().check(z.minLength(1)), "default"),
  EVENT_BUS_ENDPOINT: z.optional(z.url()),
  AWS_REGION: z.optional(z.string()),
  JWT_ISSUER: z._default(z.string().check(z.minLength(1)), "enclave-auth"),
  JWT_AUDIENCE: z._default(z.string().check(z.minLength(1)), "enclave"),
  /** The auth service's public keys: a JWKS URL, or the JWKS document itself. */
  AUTH_JWKS_URL: z.optional(z.url()),
  AUTH_PUBLIC_JWKS: z.optional(z.string().check(z.refine(isPublicJwksJson, 'must be a JWKS document ({"keys": [...]}) of public keys only'))),
  /** The stage's public service keys: when set, other services may call this one's service routes. */
  SERVICE_PUBLIC_JWKS: z.optional(z.string().check(z.refine(isPublicJwksJson, 'must be a JWKS document ({"keys": [...]}) of public keys only'))),
  DB_MAX_CONNECTIONS: z._default(z.coerce.number().check(z.int(), z.positive()), 1),
  DB_QUERY_TIMEOUT_MS: queryTimeoutSchema,
  NEON_WS_PROXY: z.optional(z.string()),
  /** Which of the service's jobs a job function runs (the deployment sets it per function). */
  JOB_NAME: z.optional(z.string().check(z.regex(/^[a-z][a-z0-9-]*$/, "must be a job name (kebab-case)"))),
});
export type CommonConfig = z.output<typeof commonEnv> & { service: string; databaseUrl: string };

/** A P-256 private JWK in a variable (the service key that signs a service's calls to another). */
export const privateJwkVariable = z.string().check(z.refine(isPrivateJwkJson, "must be a P-256 private JWK (JSON)"));

/** Parses the variables every service reads; each service's config.ts calls this with process.env. */
export function parseCommonConfig(service: string, plainEnv: Env): CommonConfig {
  // Every problem at once, so one failed start-up shows everything to fix.
  const problems: string[] = [];
  const env = sealedSettingsOf(service, plainEnv);
  let common: z.output<typeof commonEnv> | undefined;
  try {
    common = parseEnv(commonEnv, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const serviceVariable = `${service.toUpperCase()}_DATABASE_URL`;
  const databaseUrl = databaseUrlFor(service, env);
  if (!databaseUrl) {
    problems.push(`${serviceVariable} (or DATABASE_URL) is required`);
  } else {
    try {
      driverFor(databaseUrl);
    } catch {
      // Never echo the URL: it may carry a password.
      problems.push(`${env[serviceVariable] ? serviceVariable : "DATABASE_URL"}: must be pglite://memory, pglite://<dir>, postgres://… or a Neon URL`);
    }
  }
  if (problems.length > 0 || !common || !databaseUrl) throw new ConfigError(problems, service);
  return { ...common, service, databaseUrl };
}

/**
 * The variables every service reads plus the service's own schema, every problem of both
 * reported at once and named after the service: what a service's config.ts calls.
 */
export function parseServiceConfig<S extends z.ZodMiniObject>(service: string, schema: S, plainEnv: Env): CommonConfig & z.infer<S> {
  const problems: string[] = [];
  const env = sealedSettingsOf(service, plainEnv);
  const attempt = <T>(parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const common = attempt(() => parseCommonConfig(service, env));
  const own = attempt(() => parseEnv(schema, env));
  if (problems.length > 0 || !common || !own) throw new ConfigError(problems, service);
  return { ...common, ...own };
}
