/**
 * What a service declares about itself that the deployment needs before any of its code runs:
 * its name and its API Gateway prefix. This module imports nothing at run time, so the SST
 * program and the deployment plan read manifests without loading application code.
 */
export interface Manifest {
  /** Lower-case identifier: the schema, the database, the event source and the function names follow it. */
  name: string;
  /** API Gateway path prefix, e.g. `/auth`. */
  prefix: string;
}

export function defineManifest<const M extends Manifest>(manifest: M): M {
  return manifest;
}

/**
 * The namespace of every event source (`enclave.auth`, …). It is part of the event contract,
 * not deployment configuration: subscription patterns are written against it, so renaming a
 * deployment can never silently stop delivery.
 */
export const APP = "enclave";

/** `<app>.<service>`, the EventBridge `source` of a service's events. */
export const eventSource = (app: string, service: string) => `${app}.${service}`;

/** An EventBridge schedule expression; the local runtime runs `rate(...)` ones on a timer. */
export type Schedule = `rate(${string})` | `cron(${string})`;

/** Seconds between runs of a `rate(...)` schedule (what the local runtime's timers use). */
export function rateSeconds(schedule: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)$/.exec(schedule);
  if (!match) throw new Error(`unsupported schedule ${schedule}`);
  const unit = match[2]?.startsWith("hour") ? 3600 : match[2]?.startsWith("minute") ? 60 : 1;
  return Number(match[1]) * unit;
}
