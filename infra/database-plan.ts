import { type ServiceRoles, serviceRoles } from "@enclave/core/db/role-names";
import type { StageSettings } from "./stage";

/** Database names, role names and connection URLs of a stage, computed before anything exists. */

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
