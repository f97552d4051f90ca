import type { StageDatabase } from "./database";
import { type SealedLinks, sealedLinks } from "./functions";
import type { Secrets } from "./secrets";
import { architecture, defaultSizing, nodejs, runtime } from "./sizing";
import type { StageSettings } from "./stage";

/**
 * The migrate function and its invocation on every deploy: roles, databases, migrations, then
 * the stage's seed sets (settings.seeds). `aws.lambda.Invocation` invokes only
 * when it is created or its inputs change: the `deployedAt` trigger changes on every deploy, so
 * it runs every time. A migration that fails makes the invocation fail, and the deploy with it.
 * Service functions take the resulting schema digest as a variable, so they are updated only
 * after the migrations succeeded.
 */
export function createMigrations(database: StageDatabase, services: string[], settings: StageSettings, secrets: Secrets, sealed: SealedLinks) {
  const { topology, singleDatabase } = settings;
  const environment: Record<string, $util.Input<string>> = {
    STAGE: $app.stage,
    MIGRATE_ADMIN_URL: database.adminUrl,
    MIGRATE_TOPOLOGY: topology,
    MIGRATE_SERVICES: services.join(","),
    // Seed events wait in each service's outbox; the sweepers publish them once the rules exist.
    MIGRATE_SEEDS: settings.seeds.join(","),
  };
  // Only the single topology names one database; per service, each service's database is named
  // after it, as the runtime URLs (database.ts) say.
  if (topology === "single") environment.MIGRATE_DATABASE = singleDatabase;
  for (const service of services) environment[`${service.toUpperCase()}_RUNTIME_PASSWORD`] = database.services[service]!.password;
  if (secrets.StagingSeedPassword) environment.STAGING_SEED_PASSWORD = secrets.StagingSeedPassword.value;

  // The administrator's URL, the runtime passwords and the staging seed password are sealed into the package, not set as variables.
  const { environment: variables, link } = sealedLinks(environment, sealed);
  const fn = new sst.aws.Function("Migrate", {
    description: "Applies every service's migrations, roles and grants for the stage",
    handler: "functions/migrate.handler",
    runtime,
    architecture,
    memory: defaultSizing.migrate.memory,
    timeout: defaultSizing.migrate.timeout,
    nodejs,
    copyFiles: [{ from: "migrations", to: "migrations" }],
    environment: variables,
    link,
    // Invoked synchronously by the deploy: no retries, and never proxied to a laptop by `sst dev`.
    retries: 0,
    dev: false,
  });

  const invocation = new aws.lambda.Invocation("MigrateInvocation", {
    functionName: fn.name,
    input: JSON.stringify({ stage: $app.stage }),
    triggers: { deployedAt: Date.now().toString() },
  });

  const result = invocation.result.apply((text) => JSON.parse(text) as { schema: string; services: { service: string; applied: string[] }[] });
  return { fn, invocation, schemaVersion: result.apply((r) => r.schema), applied: result.apply((r) => r.services) };
}
