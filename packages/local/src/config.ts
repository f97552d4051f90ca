import { parseEnv, queryTimeoutSchema, stageSchema } from "@enclave/core";
import * as z from "zod/mini";

const localEnv = z.object({
  PORT: z._default(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(65535)), 3000),
  HOST: z._default(z.string(), "127.0.0.1"),
  /** Local state: one PGlite database per service, signing keys, the bus's pending and dead-letter lists. */
  DATA_DIR: z._default(z.string().check(z.minLength(1)), ".data"),
  STAGE: z._default(stageSchema, "local"),
  /** Which seed data set to apply at start besides `essential`: development (default) or none. */
  SEED: z._default(z.enum(["development", "none"]), "development"),
  SEED_ADMIN_PASSWORD: z._default(z.string().check(z.minLength(8)), "enclave-admin-dev"),
  /** The staging seed set's accounts' password; unset, they get random ones nobody knows. */
  STAGING_SEED_PASSWORD: z.optional(z.string().check(z.minLength(12))),
  /** A tenant registry (JSON): each tenant gets its own databases, services and bus (docs/OPERATIONS.md, Tenants). */
  TENANTS_FILE: z.optional(z.string().check(z.minLength(1))),
  /** Set to 0 to not run crons on timers (tests drive them by hand). */
  LOCAL_CRONS: z._default(z.enum(["0", "1"]), "1"),
  DB_QUERY_TIMEOUT_MS: queryTimeoutSchema,
  BUS_MAX_ATTEMPTS: z._default(z.coerce.number().check(z.int(), z.minimum(1)), 5),
  BUS_RETRY_BASE_MS: z._default(z.coerce.number().check(z.int(), z.minimum(1)), 250),
});

export type LocalConfig = z.output<typeof localEnv>;

export function readLocalConfig(env: Record<string, string | undefined> = process.env): LocalConfig {
  return parseEnv(localEnv, env);
}
