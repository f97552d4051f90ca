/**
 * Names of a service's roles and database: no SQL runs here, so the deployment plan computes the
 * same names the migration runner (roles.ts) creates without loading a database driver.
 */

/** `per-service`: a database per service. `single`: one database, a schema per service. */
export type Topology = "per-service" | "single";
export const topologies: readonly Topology[] = ["per-service", "single"];

export interface ServiceRoles {
  service: string;
  /** NOLOGIN role owning the service's schema, tables and migrations bookkeeping. */
  owner: string;
  /** LOGIN role the service runs as: DML on its own schema only. */
  runtime: string;
  /** The database holding the service's schema. */
  database: string;
}

export const identifier = /^[a-z][a-z0-9_]{0,62}$/;

export function checkIdentifier(kind: string, value: string): string {
  if (!identifier.test(value)) throw new Error(`${kind} "${value}" must be a lower-case SQL identifier (a-z, 0-9, _; at most 63 characters)`);
  return value;
}

/** Role and database names of a service. `prefix` namespaces the roles (tests share one server). */
export function serviceRoles(service: string, options: { topology: Topology; database?: string; prefix?: string }): ServiceRoles {
  checkIdentifier("service", service);
  const prefix = options.prefix ?? "";
  return {
    service,
    owner: checkIdentifier("role", `${prefix}${service}_owner`),
    runtime: checkIdentifier("role", `${prefix}${service}_app`),
    database: checkIdentifier("database", options.topology === "single" ? (options.database ?? "enclave") : (options.database ?? `${prefix}${service}`)),
  };
}
