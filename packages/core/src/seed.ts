import { sql } from "drizzle-orm";
import { type Queryable, rowsOf } from "./db/index";
import type { Role } from "./http/types";
import type { SeedSet } from "./service";

/**
 * Seed sets per environment, and how a run recognises production.
 *
 * | set           | where                 | what                                                                |
 * |---------------|-----------------------|---------------------------------------------------------------------|
 * | `essential`   | every stage           | what the system needs to run (system configuration defaults)        |
 * | `development` | local, previews, dev  | the administrator of API.md, demo users with profiles, payments in every status |
 * | `staging`     | staging               | a small realistic set; passwords only from STAGING_SEED_PASSWORD     |
 * | `production`  | production            | essential only                                                      |
 *
 * Production is recognised two ways, and either refuses `development` and `staging`: the stage
 * name (`STAGE=production`, the stage infra treats as production), and a marker in the database
 * itself, the database comment `enclave stage: <stage>`, which the migrate function writes on
 * every database it creates or migrates that has none. A database copied from production (a Neon
 * branch of it) keeps production's marker, so pointing a URL at production data is refused even
 * when STAGE says otherwise.
 */
export const seedSets = ["essential", "development", "staging", "production"] as const satisfies readonly SeedSet[];

export const PRODUCTION_STAGE = "production";

/** Sets that create accounts or demo data: never on production. */
export const refusedOnProduction: readonly SeedSet[] = ["development", "staging"];

/** The sets a run for `environment` applies, in order: essential first, always. */
export function setsFor(environment: SeedSet): SeedSet[] {
  return environment === "essential" ? ["essential"] : ["essential", environment];
}

/** Why `sets` must not be applied to a target, or undefined when they may. `where` names the target. */
export function productionRefusal(
  sets: readonly SeedSet[],
  target: { stage?: string | undefined; marker?: string | undefined; where: string },
): string | undefined {
  const refused = sets.filter((set) => refusedOnProduction.includes(set));
  if (refused.length === 0) return undefined;
  const what = `the ${refused.join(" and ")} seed ${refused.length > 1 ? "sets are" : "set is"} refused on production`;
  if (target.stage === PRODUCTION_STAGE) return `${what}: ${target.where} is ${PRODUCTION_STAGE}`;
  if (target.marker === PRODUCTION_STAGE)
    return `${what}: ${target.where} is marked as stage ${PRODUCTION_STAGE} (database comment "${stageMarker(PRODUCTION_STAGE)}")`;
  return undefined;
}

const markerPattern = /^enclave stage: ([a-z0-9][a-z0-9-]*)$/;

export const stageMarker = (stage: string) => `enclave stage: ${stage}`;

/** The stage a database comment marks, if it is a marker. */
export function parseStageMarker(comment: string | null | undefined): string | undefined {
  return comment ? markerPattern.exec(comment.trim())?.[1] : undefined;
}

/** The stage marker of the database `db` is connected to. Any role that can connect can read it. */
export async function readStageMarker(db: Queryable): Promise<string | undefined> {
  const [row] = rowsOf<{ comment: string | null }>(
    await db.execute(sql`select shobj_description(oid, 'pg_database') as "comment" from pg_database where datname = current_database()`),
  );
  return parseStageMarker(row?.comment);
}

/** The stage markers of the named databases of a server (read through any of its databases). */
export async function readStageMarkers(db: Queryable, databases: string[]): Promise<Map<string, string>> {
  if (databases.length === 0) return new Map();
  const rows = rowsOf<{ name: string; comment: string | null }>(
    await db.execute(
      sql`select datname as "name", shobj_description(oid, 'pg_database') as "comment" from pg_database where datname in (${sql.join(
        databases.map((d) => sql`${d}`),
        sql`, `,
      )})`,
    ),
  );
  const markers = new Map<string, string>();
  for (const row of rows) {
    const stage = parseStageMarker(row.comment);
    if (stage) markers.set(row.name, stage);
  }
  return markers;
}

/**
 * Marks the database `db` is connected to with `stage`, unless it carries a comment already: a
 * marker is never moved, so data copied from production stays recognisable. Needs the database's
 * owner (or a role acting as it).
 */
export async function markStage(db: Queryable, stage: string): Promise<void> {
  if (!markerPattern.test(stageMarker(stage))) throw new Error(`"${stage}" cannot be a stage marker`);
  const [row] = rowsOf<{ name: string; comment: string | null }>(
    await db.execute(
      sql`select current_database() as "name", shobj_description(oid, 'pg_database') as "comment" from pg_database where datname = current_database()`,
    ),
  );
  if (!row || row.comment !== null) return;
  const name = `"${row.name.replaceAll('"', '""')}"`;
  await db.execute(sql.raw(`comment on database ${name} is '${stageMarker(stage)}'`));
}

/** Someone the seed sets create, in every service that keeps rows about them. */
export interface SeedPerson {
  /** Fixed, so each service seeds its own rows about the person without asking another service. */
  id: string;
  email: string;
  name: string;
  role: Role;
}

/** The development set's demo users (the administrator of API.md is auth's own: its id is not needed elsewhere). */
export const developmentPeople = {
  ada: { id: "01936d00-0000-7000-8000-00000000da01", email: "ada@enclave.dev", name: "Ada Lovelace", role: "CUSTOMER" },
  grace: { id: "01936d00-0000-7000-8000-00000000da02", email: "grace@enclave.dev", name: "Grace Hopper", role: "CUSTOMER" },
  shop: { id: "01936d00-0000-7000-8000-00000000da03", email: "shop@enclave.dev", name: "Corner Bakery", role: "VENDOR" },
} as const satisfies Record<string, SeedPerson>;

/** The staging set's accounts: a support administrator, two customers and a vendor. */
export const stagingPeople = {
  support: { id: "01936d00-0000-7000-8000-000000005a01", email: "support@staging.enclave.dev", name: "Staging Support", role: "ADMIN" },
  maria: { id: "01936d00-0000-7000-8000-000000005a02", email: "maria.santos@staging.enclave.dev", name: "Maria Santos", role: "CUSTOMER" },
  tom: { id: "01936d00-0000-7000-8000-000000005a03", email: "tom.becker@staging.enclave.dev", name: "Tom Becker", role: "CUSTOMER" },
  market: { id: "01936d00-0000-7000-8000-000000005a04", email: "orders@market.staging.enclave.dev", name: "Harbour Market", role: "VENDOR" },
} as const satisfies Record<string, SeedPerson>;
