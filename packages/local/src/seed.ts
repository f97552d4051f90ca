import { resolve } from "node:path";
import type { Database, SeedSet, ServiceContext } from "@enclave/core";
import { productionRefusal, readStageMarker, refusedOnProduction, seedSets, setsFor } from "@enclave/core/seed";
import { readLocalConfig } from "./config";
import type { LocalService } from "./registry";
import { createLocalRuntime, type DatabaseLocation, databaseLocation, type LocalRuntime, openServiceDatabases, StartupError } from "./runtime";
import { localServices } from "./services";

export const isSeedSet = (name: string): name is SeedSet => (seedSets as readonly string[]).includes(name);

/**
 * Refuses `development` and `staging` against production before anything is opened for writing:
 * when STAGE is `production`, or when a database the run would write to carries production's
 * marker (only a PostgreSQL server can: the migrate function writes it; PGlite directories are
 * never deployed, and are not opened here, so a refused run creates none).
 */
export async function checkSeedTarget(environment: SeedSet, services: LocalService[], env: Record<string, string | undefined>): Promise<void> {
  const config = readLocalConfig(env);
  const sets = setsFor(environment);
  const byStage = productionRefusal(sets, { stage: config.STAGE, where: "STAGE" });
  if (byStage) throw new StartupError([`db:seed: ${byStage}`]);
  if (!sets.some((set) => refusedOnProduction.includes(set))) return;
  const stageDir = resolve(config.DATA_DIR, config.STAGE);
  const servers = new Map<string, DatabaseLocation>();
  for (const { module } of services) {
    const location = databaseLocation(module.manifest.name, env, stageDir);
    if (!location.url.startsWith("pglite:")) servers.set(module.manifest.name, location);
  }
  if (servers.size === 0) return;
  const opened = await openServiceDatabases(servers, 1);
  try {
    // Services sharing a URL share a database: one line for them all.
    const byDatabase = new Map<unknown, { services: string[]; location: DatabaseLocation }>();
    for (const [service, location] of servers) {
      const database = opened.byService.get(service);
      const entry = byDatabase.get(database) ?? { services: [], location };
      entry.services.push(service);
      byDatabase.set(database, entry);
    }
    const problems: string[] = [];
    for (const [database, { services: names, location }] of byDatabase) {
      const marker = await readStageMarker((database as Database).db);
      const refusal = productionRefusal(sets, { marker, where: "the database" });
      if (refusal) problems.push(`db:seed: ${names.join(", ")}: ${location.variable}: ${refusal}`);
    }
    if (problems.length > 0) throw new StartupError(problems);
  } finally {
    await opened.close();
  }
}

/** Applies the environment's sets (essential first) to each service, in start-up order. */
export async function applySeedSets(runtime: LocalRuntime, services: LocalService[], environment: SeedSet): Promise<SeedSet[]> {
  const sets = setsFor(environment);
  const options = { adminPassword: runtime.config.SEED_ADMIN_PASSWORD, stagingPassword: runtime.config.STAGING_SEED_PASSWORD };
  for (const set of sets) {
    for (const service of services) {
      const context = runtime.contexts.get(service.module.manifest.name) as ServiceContext;
      await service.module.seeds[set]?.(context, options);
    }
  }
  return sets;
}

/**
 * `npm run db:seed`: checks the target, starts the runtime without crons (which migrates), applies
 * the sets and delivers their events before stopping, so the events' effects (profiles of seeded
 * users, audit rows) are there when it returns. Every set is idempotent: a second run writes nothing.
 */
export async function seed(
  environment: SeedSet,
  env: Record<string, string | undefined>,
  services: LocalService[] = localServices,
  tenant?: string,
): Promise<SeedSet[]> {
  await checkSeedTarget(environment, services, env);
  const runtime = await createLocalRuntime({ env: { ...env, LOCAL_CRONS: "0", SEED: "none" }, services, ...(tenant ? { tenant } : {}) });
  try {
    const sets = await applySeedSets(runtime, services, environment);
    await runtime.bus.drain();
    return sets;
  } finally {
    await runtime.close();
  }
}
