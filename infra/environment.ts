import { parseSigningKeys, publicJwksJson } from "@enclave/core/keys";
import type { ServiceDeployment } from "./plan";

/**
 * What a service's functions find in their environment: the variables its config.ts reads, built
 * from the stage's values (strings in tests and checks, deploy-time outputs in the SST program).
 */

/** Secrets a service's functions may receive, and the variable each one is read from. */
export const secretVariables = {
  AuthSigningKey: "AUTH_SIGNING_KEY",
  ServiceSigningKey: "SERVICE_SIGNING_KEY",
} as const;
export type ServiceSecret = keyof typeof secretVariables;

/**
 * Variables that carry a secret: a private key, a database URL with its password, the migrate
 * function's administrator URL, runtime passwords and the staging seed password. The deployment never sets them in a
 * function's configuration (readable by anyone who may read the function's settings): it seals
 * them into the function's package (infra/functions.ts, `sealedLinks`), where the functions'
 * configuration reads them (core's withSealedSettings).
 */
export function isSealedVariable(name: string): boolean {
  return (
    name.endsWith("_DATABASE_URL") ||
    name.endsWith("_RUNTIME_PASSWORD") ||
    name === "MIGRATE_ADMIN_URL" ||
    name === "STAGING_SEED_PASSWORD" ||
    (Object.values(secretVariables) as string[]).includes(name)
  );
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
 * keys,, the secrets its deployment entry names and, for a job function, JOB_NAME. Variable names are the ones the services'
 * config.ts files read (core's parseCommonConfig and each service's own).
 */
export function functionEnvironment<T>(deployment: ServiceDeployment, values: EnvironmentValues<T>, job?: string): Record<string, T | string> {
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
  // A job function runs one of the service's jobs: the one named here.
  if (job) environment.JOB_NAME = job;
  return environment;
}

/**
 * The public JWKS (JSON) for a private P-256 JWK kept in a secret: what every service verifies
 * tokens with. Throws without echoing the value when the secret is not such a key, so a wrong
 * secret fails the deploy rather than every request. The kid is required: tokens name their
 * key, and the key in the secret is the one that signs them.
 */
export function publicJwks(secretName: string, privateJwkJson: string): string {
  // During a rotation the secret is {"keys": [...]}: every key is published, the first signs.
  const { keys } = parseSigningKeys(secretName, privateJwkJson);
  const given = JSON.parse(privateJwkJson) as { kid?: unknown; keys?: { kid?: unknown }[] };
  if (!(given.keys ?? [given]).every((key) => key.kid)) {
    throw new Error(`${secretName} must be a P-256 private JWK with kid, x, y and d (npx tsx infra/keygen.ts prints one)`);
  }
  return publicJwksJson(...keys);
}
