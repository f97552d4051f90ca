import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type AppEnv, AppError, ConfigError, finalizeApp, requestContext } from "@enclave/core";
import { fileProblem } from "@enclave/core/db/failures";
import { parseTenantRegistry, TENANT_CLAIM, TENANT_HEADER, type TenantRegistry, tenantEnv, tenantIdPattern } from "@enclave/core/tenants";
import { Hono } from "hono";
import { decodeJwt } from "jose";
import { type LocalConfig, readLocalConfig } from "./config";
import { createLocalRuntime, type LocalRuntime, type StartOptions, StartupError } from "./runtime";
import { localServices } from "./services";

/**
 * The registry TENANTS_FILE names, or undefined when tenants are not configured. A file that
 * cannot be read or parsed stops start-up, one line per problem, each naming TENANTS_FILE.
 */
export function readTenantRegistry(config: Pick<LocalConfig, "TENANTS_FILE">): TenantRegistry | undefined {
  if (!config.TENANTS_FILE) return undefined;
  let json: string;
  try {
    json = readFileSync(resolve(config.TENANTS_FILE), "utf8");
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (fileProblem(error) ?? "unreadable");
    throw new StartupError([`TENANTS_FILE: cannot read ${config.TENANTS_FILE} (${why})`], { cause: error });
  }
  try {
    return parseTenantRegistry("TENANTS_FILE", json);
  } catch (error) {
    if (error instanceof ConfigError) throw new StartupError(error.problems, { cause: error });
    throw error;
  }
}

/** The tenants a `--tenant` option names: `all`, or one id; undefined for an id the registry lacks. */
export function chosenTenants(registry: TenantRegistry, option: string | undefined): string[] | undefined {
  if (option === undefined || option === "all") return [...registry.tenants.keys()];
  return registry.tenants.has(option) ? [option] : undefined;
}

/** Every tenant's runtime behind one fetch: what `npm run dev` serves when TENANTS_FILE is set. */
export interface TenantsRuntime {
  config: LocalConfig;
  app: { fetch(request: Request, env?: unknown): Response | Promise<Response> };
  /** One cell per tenant: its databases, services, bus and crons. */
  cells: Map<string, LocalRuntime>;
  stageDir: string;
  close(): Promise<void>;
}

/**
 * Paths that read no tenant's data, served by any cell when a request names no tenant: the
 * service list, the interactive docs and the OpenAPI documents (the same for every tenant).
 */
const tenantFree = /^\/(?:$|docs(?:\/|$)|[a-z]+\/openapi\.json$)/;

type Resolution = { tenant: string } | { tenant?: undefined; error: AppError };

/**
 * Which tenant a request is for: the `X-Tenant-Id` header when it is sent, else the access
 * token's `tid`. The token is only read here; the tenant's own verifier checks its signature and
 * that its `tid` is that tenant, so naming another tenant in the header gains nothing.
 */
export function requestTenant(request: Request, known: ReadonlySet<string>): Resolution | undefined {
  const header = request.headers.get(TENANT_HEADER);
  if (header !== null) {
    if (!tenantIdPattern.test(header)) {
      return {
        error: new AppError("validation_failed", "X-Tenant-Id must be a tenant id.", { details: [{ path: "X-Tenant-Id", message: "not a tenant id" }] }),
      };
    }
    return known.has(header) ? { tenant: header } : { error: new AppError("not_found", "No such tenant.") };
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (bearer) {
    let tid: unknown;
    try {
      tid = decodeJwt(bearer)[TENANT_CLAIM];
    } catch {
      tid = undefined;
    }
    if (typeof tid === "string" && known.has(tid)) return { tenant: tid };
    return { error: new AppError("unauthorized", "The access token is invalid or expired.") };
  }
  return undefined;
}

/**
 * Starts one cell per tenant of the registry (each a whole local runtime on the tenant's
 * databases, with its own bus: events never cross tenants) and a front that passes each request
 * to its tenant's cell. The cells share the stage's signing keys; what keeps a token in its
 * tenant is its `tid`, which every cell's verifier checks.
 */
export async function createTenantsRuntime(options: StartOptions = {}): Promise<TenantsRuntime> {
  const env = { ...(options.env ?? process.env) };
  const config = readLocalConfig(env);
  const registry = readTenantRegistry(config);
  if (!registry) throw new StartupError(["TENANTS_FILE is required to run tenants"]);
  const cells = new Map<string, LocalRuntime>();
  const close = async () => {
    await Promise.all([...cells.values()].map((cell) => cell.close()));
  };
  try {
    // One after another: the first cell creates the stage's keys, the others read them.
    for (const [tenant, databases] of registry.tenants) {
      const cell = await createLocalRuntime({ env: tenantEnv(env, databases), services: options.services ?? localServices, tenant });
      cells.set(tenant, cell);
    }
  } catch (error) {
    await close().catch(() => {});
    if (error instanceof StartupError && cells.size < registry.tenants.size) {
      const tenant = [...registry.tenants.keys()][cells.size];
      throw new StartupError(
        error.problems.map((problem) => `tenant ${tenant}: ${problem}`),
        { cause: error },
      );
    }
    throw error;
  }

  const known = new Set(cells.keys());
  const first = cells.values().next().value as LocalRuntime;
  // Refusals of the front itself, in the API.md error shape with a request id.
  const refusals = new Hono<AppEnv & { Bindings: { error: AppError } }>();
  refusals.use(requestContext("*"));
  refusals.all("*", (c) => {
    throw c.env.error;
  });
  finalizeApp(refusals);

  const fetch = (request: Request, bindings?: unknown) => {
    const resolved = requestTenant(request, known);
    if (resolved?.tenant !== undefined) return (cells.get(resolved.tenant) as LocalRuntime).app.fetch(request, bindings);
    if (resolved) return refusals.fetch(request, { error: resolved.error });
    if (tenantFree.test(new URL(request.url).pathname)) return first.app.fetch(request, bindings);
    const missing = new AppError("validation_failed", "Name the tenant: send X-Tenant-Id, or an access token of the tenant.", {
      details: [{ path: "X-Tenant-Id", message: "required" }],
    });
    return refusals.fetch(request, { error: missing });
  };
  return { config, app: { fetch }, cells, stageDir: first.stageDir, close };
}
