import type { Hono } from "hono";
import type { ServiceContext } from "./context";
import type { AppEnv } from "./http/types";
import type { Jobs } from "./jobs";
import type { Manifest } from "./manifest";

export type SeedSet = "essential" | "development" | "staging" | "production";
export interface SeedOptions {
  /** Password of the development administrator (SEED_ADMIN_PASSWORD). */
  adminPassword: string;
  /** Password of the staging set's accounts (STAGING_SEED_PASSWORD); without it they get unusable random ones. */
  stagingPassword?: string | undefined;
}

/** A service's seed sets: what the local runtime and the migrate function apply per stage. */
export type Seeds<C extends ServiceContext = ServiceContext> = Partial<Record<SeedSet, (context: C, options: SeedOptions) => Promise<void>>>;

/** A service as the local runtime runs it: its manifest, HTTP app, jobs and seeds, each built from a context. */
export interface ServiceModule<C extends ServiceContext = ServiceContext> {
  manifest: Manifest;
  createApp(context: C): Hono<AppEnv>;
  jobs: Jobs<C>;
  seeds: Seeds<C>;
}

export function defineService<C extends ServiceContext>(module: ServiceModule<C>): ServiceModule<C> {
  return module;
}
