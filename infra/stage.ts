import { type Topology, topologies } from "@enclave/core/db/role-names";

/** Per-stage deployment settings, read from the environment of the machine running `sst deploy`. */

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
   * asks for it, which is the default for preview stages (`pr-<n>`) and `dev`, or `staging`
   * (ENCLAVE_SEED=staging: a few accounts whose password is STAGING_SEED_PASSWORD). Production
   * never gets either.
   */
  seeds: ("essential" | "development" | "staging")[];
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
  if (chosen !== "essential" && chosen !== "development" && chosen !== "staging")
    throw new Error(`ENCLAVE_SEED must be essential or development or staging (got "${value}")`);
  if (chosen === "development" && production)
    throw new Error("ENCLAVE_SEED=development is refused on production: it creates an administrator with a known password");
  if (chosen === "staging" && production) throw new Error("ENCLAVE_SEED=staging is refused on production: it creates test accounts");
  return chosen === "essential" ? ["essential"] : ["essential", chosen];
}

function cronsSetting(value: string | undefined): boolean {
  if (value === undefined || value === "" || value === "on") return true;
  if (value === "off") return false;
  throw new Error(`ENCLAVE_CRONS must be on or off (got "${value}")`);
}
