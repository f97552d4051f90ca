import { createApi, routeServices } from "./api";
import { createBus } from "./bus";
import { scheduleServices } from "./crons";
import { createDatabase } from "./database";
import { createAlarmTopic } from "./dead-letters";
import { publicJwks } from "./environment";
import type { FunctionContext, SealedLinks } from "./functions";
import { declaredJobs } from "./jobs";
import { createMigrations } from "./migrate";
import { planDeployment } from "./plan";
import { createSecrets } from "./secrets";
import { deployedServices } from "./services";
import { stageSettings } from "./stage";
import { subscribeServices } from "./subscribers";

/**
 * The cloud deployment of one stage: secrets, the Neon branch, migrations (run on every
 * deploy), the bus, the HTTP API with one function per service, subscribers and crons.
 */
export async function deploy() {
  const settings = stageSettings($app.stage, process.env);
  const services = deployedServices.map((d) => d.manifest.name);
  const plan = planDeployment(deployedServices, declaredJobs($cli.paths.root, services));

  const secrets = createSecrets(settings);
  const database = createDatabase(settings, plan.services, secrets);
  const bus = createBus();
  const sealed: SealedLinks = new Map();
  const migrations = createMigrations(database, plan.services, settings, secrets, sealed);
  const api = createApi();
  const alarms = createAlarmTopic();

  const context: FunctionContext = {
    bus,
    secrets,
    databaseUrls: Object.fromEntries(plan.services.map((s) => [s, database.services[s]!.url])),
    authPublicJwks: secrets.AuthSigningKey.value.apply((value) => publicJwks("AuthSigningKey", value)),
    servicePublicJwks: secrets.ServiceSigningKey.value.apply((value) => publicJwks("ServiceSigningKey", value)),
    apiUrl: api.url,
    schemaVersion: migrations.schemaVersion,
    alarms,
    sealed,
  };
  routeServices(api, plan, deployedServices, context);
  subscribeServices(bus, plan, deployedServices, context);
  scheduleServices(plan, deployedServices, context, settings.cronsEnabled);

  return {
    api: api.url,
    alarms: alarms.arn,
    neonBranch: database.branchId,
    topology: settings.topology,
    schema: migrations.schemaVersion,
    migrated: migrations.applied,
  };
}
