import { type ServiceRoles, serviceRoles, type Topology, topologies } from "@enclave/core/db/roles";
import type { Manifest } from "@enclave/core/service";

/**
 * What the cloud deployment is made of, computed from the service manifests with no cloud SDK
 * involved: routes, functions, subscriptions, crons, database names and per-stage settings.
 * The resource files in infra/ turn this plan into SST components; the tests check it against
 * the manifests and the local runtime, so both stay one source of truth.
 */

export type Size = `${number} MB`;
export type Timeout = `${number} ${"second" | "seconds" | "minute" | "minutes"}`;

/** Secrets a service's functions may receive, and the variable each one is read from. */
export const secretVariables = {
  AuthSigningKey: "AUTH_SIGNING_KEY",
  ServiceSigningKey: "SERVICE_SIGNING_KEY",
} as const;
export type ServiceSecret = keyof typeof secretVariables;

export interface FunctionSizing {
  memory?: Size;
  timeout?: Timeout;
}

export interface ServiceDeployment {
  manifest: Manifest;
  /** Secrets every function of the service gets (as the variable in `secretVariables`). */
  secrets?: ServiceSecret[];
  /** Variables set to the API's base URL, for services that call another service over HTTP. */
  apiUrlAs?: string[];
  /** Sizing of the API function (subscribers and crons use the defaults below). */
  api?: FunctionSizing;
}

/** The values a service function's environment is made of (strings here, deploy-time outputs in infra). */
export interface EnvironmentValues<T> {
  app: string;
  stage: string;
  busName: T;
  /** The service's own runtime-role URL. */
  databaseUrl: T;
  authPublicJwks: T;
  servicePublicJwks: T;
  secrets: Record<ServiceSecret, T>;
  apiUrl: T;
  schemaVersion: T;
}

/**
 * The environment of one service's functions: only its own database URL, the bus, the public
 * keys, and the secrets its deployment entry names. Variable names are the ones the services'
 * config.ts files read (core's parseCommonConfig and each service's own).
 */
export function functionEnvironment<T>(deployment: ServiceDeployment, values: EnvironmentValues<T>): Record<string, T | string> {
  const service = deployment.manifest.name;
  const environment: Record<string, T | string> = {
    STAGE: values.stage,
    LOG_LEVEL: "info",
    EVENT_BUS_NAME: values.busName,
    JWT_ISSUER: `${values.app}-auth`,
    JWT_AUDIENCE: values.app,
    AUTH_PUBLIC_JWKS: values.authPublicJwks,
    SERVICE_PUBLIC_JWKS: values.servicePublicJwks,
    DB_MAX_CONNECTIONS: "1",
    [`${service.toUpperCase()}_DATABASE_URL`]: values.databaseUrl,
    SCHEMA_VERSION: values.schemaVersion,
  };
  for (const secret of deployment.secrets ?? []) environment[secretVariables[secret]] = values.secrets[secret];
  for (const name of deployment.apiUrlAs ?? []) environment[name] = values.apiUrl;
  return environment;
}

export type FunctionKind = "api" | "subscriber" | "cron" | "migrate";

/**
 * Sizing per kind of function. Lambda gives CPU in proportion to memory (one full vCPU at
 * 1769 MB), so memory is chosen for CPU as much as for RAM. API functions: 1024 MB keeps cold
 * starts short (bundle parse and TLS to Neon are CPU-bound); 10 s is well inside API Gateway's
 * 30 s limit. Subscribers and crons are not latency-sensitive: 512 MB. The migrate function
 * waits on a compute that may be waking up and on DDL: 5 minutes.
 */
export const defaultSizing: Record<FunctionKind, Required<FunctionSizing>> = {
  api: { memory: "1024 MB", timeout: "10 seconds" },
  subscriber: { memory: "512 MB", timeout: "30 seconds" },
  cron: { memory: "512 MB", timeout: "60 seconds" },
  migrate: { memory: "1024 MB", timeout: "5 minutes" },
};

/** Every function: Node 24 on Graviton (arm64 costs about 20% less per GB-second than x86). */
export const runtime = "nodejs24.x" as const;
export const architecture = "arm64" as const;

/**
 * Packages a function bundle must never contain. Core picks the database driver by URL and
 * imports it on demand; PGlite (local and tests) and node-postgres (a plain PostgreSQL server)
 * are never used in the cloud, where every URL is a Neon URL.
 */
export const unbundled = ["@electric-sql/pglite", "pg", "pg-native"];

/**
 * Bundling: ESM, minified, and split into chunks. Splitting matters: without it esbuild hoists
 * the lazily loaded drivers' imports of the unbundled packages to the top of the one output
 * file, and the function fails at cold start looking for `@electric-sql/pglite`. With it, each
 * dynamically imported module (driver, EventBridge SDK, OpenAPI generator) is its own chunk,
 * loaded only when used. `npm run infra:check` builds every function this way and loads it.
 */
export const nodejs = {
  format: "esm" as const,
  minify: true,
  splitting: true,
  esbuild: { external: unbundled },
};

/** Dead-letter queues keep a failed event or job for 14 days (the SQS maximum). */
export const deadLetterRetentionSeconds = 14 * 24 * 3600;

/**
 * Retries. A subscriber or cron function that throws is retried twice by Lambda's asynchronous
 * invocation (3 attempts), then the event goes to the function's dead-letter queue. EventBridge
 * and EventBridge Scheduler retry their own delivery failures (throttling, a missing
 * permission) per the target retry policy, then dead-letter the event to the same queue.
 */
export const retries = {
  functionAttempts: 2,
  functionMaxEventAgeSeconds: 6 * 3600,
  deliveryAttempts: 185,
  deliveryMaxEventAgeSeconds: 24 * 3600,
  cronDeliveryAttempts: 3,
};

export interface PlannedFunction {
  service: string;
  kind: Exclude<FunctionKind, "migrate">;
  /** The subscription or cron name; "api" for the API function. */
  name: string;
  /** SST component name, unique in the app. */
  resource: string;
  /** `functions/<service>/<name>.handler`. */
  handler: string;
  sizing: Required<FunctionSizing>;
}

export interface PlannedRoute {
  service: string;
  /** API Gateway route key, e.g. `ANY /auth/{proxy+}`. */
  route: string;
  /** The API function's resource name. */
  resource: string;
}

export interface PlannedSubscription extends PlannedFunction {
  kind: "subscriber";
  /** The EventBridge pattern, exactly as the manifest (and the local bus) declares it. */
  pattern: Manifest["subscriptions"][number]["pattern"];
  /** The rule's event pattern document. */
  eventPattern: string;
}

export interface PlannedCron extends PlannedFunction {
  kind: "cron";
  schedule: Manifest["crons"][number]["schedule"];
}

export interface DeploymentPlan {
  services: string[];
  functions: PlannedFunction[];
  routes: PlannedRoute[];
  subscriptions: PlannedSubscription[];
  crons: PlannedCron[];
}

const pascal = (value: string) =>
  value
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");

const entryName = /^[a-z][a-z0-9-]*$/;

/** Turns the deployed services' manifests into routes, functions, subscriptions and crons. */
export function planDeployment(deployments: ServiceDeployment[]): DeploymentPlan {
  const plan: DeploymentPlan = { services: [], functions: [], routes: [], subscriptions: [], crons: [] };
  const resources = new Set<string>();
  const prefixes = new Set<string>();
  const claim = (resource: string) => {
    if (resources.has(resource)) throw new Error(`two functions would both be named ${resource}`);
    resources.add(resource);
    return resource;
  };
  for (const { manifest, api } of deployments) {
    const service = manifest.name;
    if (!/^[a-z][a-z0-9_]*$/.test(service)) throw new Error(`service name "${service}" must be a lower-case identifier`);
    if (plan.services.includes(service)) throw new Error(`service ${service} is listed twice`);
    if (!/^\/[a-z0-9][a-z0-9-]*$/.test(manifest.prefix)) throw new Error(`${service}: prefix "${manifest.prefix}" must be one path segment like /auth`);
    if (prefixes.has(manifest.prefix)) throw new Error(`${service}: prefix ${manifest.prefix} is already routed to another service`);
    prefixes.add(manifest.prefix);
    plan.services.push(service);

    const apiFunction: PlannedFunction = {
      service,
      kind: "api",
      name: "api",
      resource: claim(`${pascal(service)}Api`),
      handler: `functions/${service}/api.handler`,
      sizing: { ...defaultSizing.api, ...api },
    };
    plan.functions.push(apiFunction);
    // The bare prefix too: API Gateway's {proxy+} needs at least one more segment.
    for (const route of [`ANY ${manifest.prefix}`, `ANY ${manifest.prefix}/{proxy+}`]) plan.routes.push({ service, route, resource: apiFunction.resource });

    for (const subscription of manifest.subscriptions) {
      if (!entryName.test(subscription.name)) throw new Error(`${service}: subscription name "${subscription.name}" must be kebab-case`);
      const planned: PlannedSubscription = {
        service,
        kind: "subscriber",
        name: subscription.name,
        resource: claim(`${pascal(service)}${pascal(subscription.name)}`),
        handler: `functions/${service}/${subscription.name}.handler`,
        sizing: defaultSizing.subscriber,
        pattern: subscription.pattern,
        eventPattern: JSON.stringify(subscription.pattern),
      };
      plan.subscriptions.push(planned);
      plan.functions.push(planned);
    }
    for (const cron of manifest.crons) {
      if (!entryName.test(cron.name)) throw new Error(`${service}: cron name "${cron.name}" must be kebab-case`);
      const planned: PlannedCron = {
        service,
        kind: "cron",
        name: cron.name,
        resource: claim(`${pascal(service)}Cron${pascal(cron.name)}`),
        handler: `functions/${service}/${cron.name}.handler`,
        sizing: defaultSizing.cron,
        schedule: cron.schedule,
      };
      plan.crons.push(planned);
      plan.functions.push(planned);
    }
  }
  return plan;
}

/** Where a planned function's entry point lives in the repository. */
export const entryFile = (fn: { handler: string }) => `${fn.handler.slice(0, -".handler".length)}.ts`;

// ---------------------------------------------------------------------------------------------
// Stages and databases

export interface StageSettings {
  stage: string;
  production: boolean;
  /** `per-service` (a database per service, the default) or `single` (one database, a schema per service). */
  topology: Topology;
  /** The shared database of the `single` topology. */
  singleDatabase: string;
  /** The Neon project every stage lives in. */
  neonProjectId: string | undefined;
  /**
   * The Neon branch (by name) non-production stages branch from. A branch starts as a copy of
   * its parent's data, so the default is `seed`, a branch without production data made once
   * (docs/DEPLOY.md: a schema-only branch of production). Production's own branch is refused
   * unless `copyProductionData` says so.
   */
  parentBranch: string;
  /** ENCLAVE_PREVIEW_FROM_PRODUCTION=yes: a non-production stage may branch from production's data. */
  copyProductionData: boolean;
  /**
   * Seed sets the migrate function applies after migrating: `essential` on every stage, plus
   * `development` (the development administrator and its known password) where ENCLAVE_SEED
   * asks for it, which is the default for preview stages (`pr-<n>`) and `dev`. Production
   * never gets it.
   */
  seeds: ("essential" | "development")[];
  /** Neon compute size range of non-production branches (compute units). */
  computeUnits: { min: number; max: number };
  /** Seconds of inactivity before a non-production branch's compute suspends. */
  suspendSeconds: number;
  /**
   * Whether crons run. Every-minute outbox sweepers keep the stage's Neon compute awake around
   * the clock; a preview stage can turn them off (ENCLAVE_CRONS=off) to let it suspend.
   */
  cronsEnabled: boolean;
}

/**
 * Deployment settings, from the environment of the machine running `sst deploy` (CI sets them
 * as repository variables): ENCLAVE_DB_TOPOLOGY, NEON_PROJECT_ID, NEON_PARENT_BRANCH, ENCLAVE_CRONS.
 */
export function stageSettings(stage: string, env: Record<string, string | undefined>): StageSettings {
  const topology = (env.ENCLAVE_DB_TOPOLOGY || "per-service") as Topology;
  if (!topologies.includes(topology)) throw new Error(`ENCLAVE_DB_TOPOLOGY must be one of ${topologies.join(", ")} (got "${topology}")`);
  const production = stage === "production";
  return {
    stage,
    production,
    topology,
    singleDatabase: "enclave",
    neonProjectId: env.NEON_PROJECT_ID || undefined,
    parentBranch: env.NEON_PARENT_BRANCH || "seed",
    copyProductionData: yesOrNo("ENCLAVE_PREVIEW_FROM_PRODUCTION", env.ENCLAVE_PREVIEW_FROM_PRODUCTION),
    seeds: seedSets(stage, production, env.ENCLAVE_SEED),
    computeUnits: { min: 0.25, max: stage === "production" ? 2 : 1 },
    suspendSeconds: 300,
    cronsEnabled: cronsSetting(env.ENCLAVE_CRONS),
  };
}

function yesOrNo(name: string, value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "no") return false;
  if (value === "yes") return true;
  throw new Error(`${name} must be yes or no (got "${value}")`);
}

/** Preview stages and `dev` get the development seed unless ENCLAVE_SEED=essential. */
function seedSets(stage: string, production: boolean, value: string | undefined): StageSettings["seeds"] {
  const chosen = value || (stage === "dev" || /^pr-\d+$/.test(stage) ? "development" : "essential");
  if (chosen !== "essential" && chosen !== "development") throw new Error(`ENCLAVE_SEED must be essential or development (got "${value}")`);
  if (chosen === "development" && production)
    throw new Error("ENCLAVE_SEED=development is refused on production: it creates an administrator with a known password");
  return chosen === "development" ? ["essential", "development"] : ["essential"];
}

function cronsSetting(value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "on") return true;
  if (value === "off") return false;
  throw new Error(`ENCLAVE_CRONS must be on or off (got "${value}")`);
}

/** Role and database names per service: the same function the migrate function uses. */
export function databasePlan(services: string[], settings: Pick<StageSettings, "topology" | "singleDatabase">): ServiceRoles[] {
  return services.map((service) =>
    serviceRoles(service, { topology: settings.topology, ...(settings.topology === "single" ? { database: settings.singleDatabase } : {}) }),
  );
}

/** Neon's pooled (PgBouncer) host for an endpoint host: `ep-x-123.region.aws.neon.tech` → `ep-x-123-pooler.region...`. */
export function pooledHost(host: string): string {
  const [first, ...rest] = host.split(".");
  if (!first || rest.length === 0) throw new Error(`not an endpoint host: ${host}`);
  return first.endsWith("-pooler") ? host : [`${first}-pooler`, ...rest].join(".");
}

/** A PostgreSQL URL with TLS required. Neon hosts select the Neon serverless driver in core. */
export function postgresUrl(parts: { user: string; password: string; host: string; database: string }): string {
  const url = new URL(`postgres://${parts.host}`);
  url.username = parts.user;
  url.password = parts.password;
  url.pathname = `/${parts.database}`;
  url.searchParams.set("sslmode", "require");
  return url.toString();
}

// ---------------------------------------------------------------------------------------------
// Keys

interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
  kid?: string;
  [key: string]: unknown;
}

/**
 * The public JWKS (JSON) for a private P-256 JWK kept in a secret: what every service verifies
 * tokens with. Throws without echoing the value when the secret is not such a key, so a wrong
 * secret fails the deploy rather than every request.
 */
export function publicJwks(secretName: string, privateJwkJson: string): string {
  let jwk: Jwk;
  try {
    jwk = JSON.parse(privateJwkJson) as Jwk;
  } catch {
    throw new Error(`${secretName} is not JSON: set it to a P-256 private JWK (npx tsx infra/keygen.ts prints one)`);
  }
  // The kid is required: tokens name their key, and a verifier only matches keys that carry one.
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.x || !jwk.y || !jwk.d || !jwk.kid) {
    throw new Error(`${secretName} must be a P-256 private JWK with kid, x, y and d (npx tsx infra/keygen.ts prints one)`);
  }
  const { d: _private, ...publicJwk } = jwk;
  return JSON.stringify({ keys: [{ ...publicJwk, alg: "ES256", use: "sig" }] });
}
