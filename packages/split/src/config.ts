import { ConfigError, databaseUrlFor, parseEnv } from "@enclave/core/config";
import { databaseUrlProblem } from "@enclave/core/db/failures";
import * as z from "zod/mini";
import { type Service, services } from "./tables";

const splitEnv = z.object({
  LOG_LEVEL: z._default(z.enum(["debug", "info", "warn", "error"]), "info"),
});

export interface Target {
  service: Service;
  /** The variable the URL came from (what a message tells the user to fix). */
  variable: string;
  url: string;
}

export interface SplitConfig {
  logLevel: "debug" | "info" | "warn" | "error";
  targets: Target[];
}

/**
 * The targets of a split: each service's database from `<SERVICE>_DATABASE_URL` (or
 * `DATABASE_URL`, every service in its own schema of one database). The split writes with COPY
 * over the PostgreSQL protocol, so PGlite directories are refused.
 */
export function readSplitConfig(env: Record<string, string | undefined> = process.env): SplitConfig {
  const problems: string[] = [];
  let logLevel: SplitConfig["logLevel"] = "info";
  try {
    logLevel = parseEnv(splitEnv, env).LOG_LEVEL;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const targets: Target[] = [];
  for (const service of services) {
    const own = `${service.toUpperCase()}_DATABASE_URL`;
    const url = databaseUrlFor(service, env);
    const variable = env[own] ? own : "DATABASE_URL";
    if (!url) {
      problems.push(`${own} (or DATABASE_URL) is required: the ${service} database to split into`);
      continue;
    }
    if (url.startsWith("pglite://")) {
      problems.push(`${variable}: the split writes to a PostgreSQL server (postgres://… or a Neon URL), not to PGlite`);
      continue;
    }
    const problem = databaseUrlProblem(variable, url);
    if (problem) {
      problems.push(problem);
      continue;
    }
    targets.push({ service, variable, url });
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)], "split");
  return { logLevel, targets };
}
