import type { JWK } from "jose";
import * as z from "zod/mini";
import { type CommonConfig, ConfigError } from "./config";
import { type ServiceContext, verifierFromConfig } from "./context";
import { driverFor } from "./db/index";

/**
 * Tenants: one deployment serving several customers, each with databases of its own. A tenant
 * id names the tenant in the registry, in the access token's `tid` claim and in the
 * `X-Tenant-Id` header of requests that carry no token (register, login, refresh).
 */
export const TENANT_CLAIM = "tid";
export const TENANT_HEADER = "x-tenant-id";

/** Lower-case letters, digits and dashes: a tenant id also names directories and databases. */
export const tenantIdPattern = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** The variables a tenant may set: `DATABASE_URL` and `<SERVICE>_DATABASE_URL`, as a deployment does. */
const databaseVariable = /^(?:[A-Z][A-Z0-9]*_)?DATABASE_URL$/;

const tenantSchema = z.record(z.string().check(z.regex(databaseVariable)), z.string().check(z.minLength(1)));
const registrySchema = z.strictObject({ tenants: z.record(z.string().check(z.regex(tenantIdPattern)), tenantSchema) });

/** A tenant's database variables; what a tenant leaves unset falls back as the environment's do. */
export type TenantDatabases = Record<string, string>;

export interface TenantRegistry {
  /** Tenant id → its database variables, in the file's order. */
  tenants: Map<string, TenantDatabases>;
}

/**
 * Parses a registry document: `{"tenants": {"<id>": {"DATABASE_URL": "…"} | {"AUTH_DATABASE_URL": "…", …}}}`.
 * Every problem is reported at once, naming `source` (the variable or file) and the tenant, never
 * a URL (it may carry a password).
 */
export function parseTenantRegistry(source: string, json: string): TenantRegistry {
  let document: unknown;
  try {
    document = JSON.parse(json);
  } catch {
    throw new ConfigError([`${source}: must be JSON: {"tenants": {"<id>": {"DATABASE_URL": "…"}}}`]);
  }
  const parsed = z.safeParse(registrySchema, document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const [top, tenant, variable] = issue.path.map(String);
      if (top !== "tenants" || tenant === undefined) return `${source}: must be {"tenants": {"<id>": {"DATABASE_URL": "…"}}}`;
      if (issue.code === "invalid_key" && variable === undefined)
        return `${source}: tenant "${tenant}": the id must be lower-case letters, digits and dashes (at most 40)`;
      if (variable === undefined) return `${source}: tenant "${tenant}": must map DATABASE_URL or <SERVICE>_DATABASE_URL to a URL`;
      if (issue.code === "invalid_key") return `${source}: tenant "${tenant}": "${variable}" is not DATABASE_URL or <SERVICE>_DATABASE_URL`;
      return `${source}: tenant "${tenant}": ${variable}: must be a URL`;
    });
    throw new ConfigError([...new Set(problems)]);
  }
  const problems: string[] = [];
  const tenants = new Map<string, TenantDatabases>();
  for (const [id, variables] of Object.entries(parsed.data.tenants)) {
    for (const [variable, url] of Object.entries(variables)) {
      try {
        driverFor(url);
      } catch {
        problems.push(`${source}: tenant "${id}": ${variable}: must be pglite://memory, pglite://<dir>, postgres://… or a Neon URL`);
      }
    }
    tenants.set(id, variables);
  }
  if (tenants.size === 0) problems.push(`${source}: names no tenant`);
  if (problems.length > 0) throw new ConfigError(problems);
  return { tenants };
}

/**
 * The environment a tenant's services run with: the deployment's, with every database variable
 * replaced by the tenant's. Nothing of the deployment's databases is left to fall back on, so a
 * variable the tenant leaves unset can never point one tenant's service at a shared database.
 */
export function tenantEnv(env: Record<string, string | undefined>, databases: TenantDatabases): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(env)) if (!databaseVariable.test(name)) result[name] = value;
  return { ...result, ...databases };
}

/**
 * A service's context serving one tenant: its verifier accepts only access tokens whose `tid` is
 * the tenant, and auth's tokens carry it. The rest (database, bus) is what the caller built for
 * the tenant already.
 */
export function tenantContext<C extends ServiceContext>(context: C, config: CommonConfig, tenant: string): C {
  // Auth checks tokens with its own keys (no JWKS to fetch) and signs them: both bound to the tenant.
  const { tokens, publicJwk, morePublicJwks } = context as { tokens?: object; publicJwk?: JWK; morePublicJwks?: JWK[] };
  const ownKeys = publicJwk ? { keys: [publicJwk, ...(morePublicJwks ?? [])] } : undefined;
  return { ...context, verifier: verifierFromConfig(config, ownKeys, tenant), ...(tokens ? { tokens: { ...tokens, tenant } } : {}) };
}
