import type { EventPattern } from "@enclave/core/events/pattern";
import type { JobDescriptor } from "@enclave/core/jobs";
import type { Manifest, Schedule } from "@enclave/core/manifest";
import type { ServiceSecret } from "./environment";
import { defaultSizing, type FunctionKind, type FunctionSizing } from "./sizing";

/**
 * What the cloud deployment is made of, computed from the service manifests and their declared
 * jobs with no cloud SDK and no application code involved: routes, functions, subscriptions and
 * crons. The resource files in infra/ turn this plan into SST components.
 */

export interface ServiceDeployment {
  manifest: Manifest;
  /** Secrets every function of the service gets (as the variable in `secretVariables`). */
  secrets?: ServiceSecret[];
  /** Variables set to the API's base URL, for services that call another service over HTTP. */
  apiUrlAs?: string[];
  /** Sizing of the API function (subscribers and crons use the defaults below). */
  api?: FunctionSizing;
}

export interface PlannedFunction {
  service: string;
  kind: Exclude<FunctionKind, "migrate">;
  /** The subscription or cron name; "api" for the API function. */
  name: string;
  /** SST component name, unique in the app. */
  resource: string;
  /** `functions/<service>/api.handler` or `functions/<service>/jobs.handler`. */
  handler: string;
  sizing: Required<FunctionSizing>;
}

export interface PlannedRoute {
  service: string;
  /** API Gateway route key, e.g. `ANY /auth/{proxy+}`. */
  route: string;
  /** The API function's resource name. */
  resource: string;
}

export interface PlannedSubscription extends PlannedFunction {
  kind: "subscriber";
  /** The EventBridge pattern, exactly as the subscription (and so the local bus) declares it. */
  pattern: EventPattern;
  /** The rule's event pattern document. */
  eventPattern: string;
}

export interface PlannedCron extends PlannedFunction {
  kind: "cron";
  schedule: Schedule;
}

export interface DeploymentPlan {
  services: string[];
  functions: PlannedFunction[];
  routes: PlannedRoute[];
  subscriptions: PlannedSubscription[];
  crons: PlannedCron[];
}

const pascal = (value: string) =>
  value
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");

const entryName = /^[a-z][a-z0-9-]*$/;

/** Turns the deployed services' manifests and jobs into routes, functions, subscriptions and crons. */
export function planDeployment(deployments: ServiceDeployment[], jobs: Record<string, JobDescriptor[]>): DeploymentPlan {
  const plan: DeploymentPlan = { services: [], functions: [], routes: [], subscriptions: [], crons: [] };
  const resources = new Set<string>();
  const prefixes = new Set<string>();
  const claim = (resource: string) => {
    if (resources.has(resource)) throw new Error(`two functions would both be named ${resource}`);
    resources.add(resource);
    return resource;
  };
  for (const { manifest, api } of deployments) {
    const service = manifest.name;
    if (!/^[a-z][a-z0-9_]*$/.test(service)) throw new Error(`service name "${service}" must be a lower-case identifier`);
    if (plan.services.includes(service)) throw new Error(`service ${service} is listed twice`);
    if (!/^\/[a-z0-9][a-z0-9-]*$/.test(manifest.prefix)) throw new Error(`${service}: prefix "${manifest.prefix}" must be one path segment like /auth`);
    if (prefixes.has(manifest.prefix)) throw new Error(`${service}: prefix ${manifest.prefix} is already routed to another service`);
    prefixes.add(manifest.prefix);
    plan.services.push(service);

    const apiFunction: PlannedFunction = {
      service,
      kind: "api",
      name: "api",
      resource: claim(`${pascal(service)}Api`),
      handler: `functions/${service}/api.handler`,
      sizing: { ...defaultSizing.api, ...api },
    };
    plan.functions.push(apiFunction);
    // The bare prefix too: API Gateway's {proxy+} needs at least one more segment.
    for (const route of [`ANY ${manifest.prefix}`, `ANY ${manifest.prefix}/{proxy+}`]) plan.routes.push({ service, route, resource: apiFunction.resource });

    // Every job runs from the service's one jobs entry; JOB_NAME (functionEnvironment) picks it.
    for (const job of jobs[service] ?? []) {
      if (!entryName.test(job.name)) throw new Error(`${service}: job name "${job.name}" must be kebab-case`);
      const common = { service, name: job.name, handler: `functions/${service}/jobs.handler` };
      if (job.kind === "subscription") {
        const planned: PlannedSubscription = {
          ...common,
          kind: "subscriber",
          resource: claim(`${pascal(service)}${pascal(job.name)}`),
          sizing: defaultSizing.subscriber,
          pattern: job.pattern,
          eventPattern: JSON.stringify(job.pattern),
        };
        plan.subscriptions.push(planned);
        plan.functions.push(planned);
      } else {
        const planned: PlannedCron = {
          ...common,
          kind: "cron",
          resource: claim(`${pascal(service)}Cron${pascal(job.name)}`),
          sizing: defaultSizing.cron,
          schedule: job.schedule,
        };
        plan.crons.push(planned);
        plan.functions.push(planned);
      }
    }
  }
  return plan;
}

/** Where a planned function's entry point lives in the repository. */
export const entryFile = (fn: { handler: string }) => `${fn.handler.slice(0, -".handler".length)}.ts`;
