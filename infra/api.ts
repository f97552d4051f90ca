import type { FunctionContext } from "./functions";
import { serviceFunction } from "./functions";
import type { DeploymentPlan, ServiceDeployment } from "./plan";

/** The HTTP API: one API Gateway HTTP API, each service's prefix routed to its API function. */
export function createApi() {
  return new sst.aws.ApiGatewayV2("Api", {
    accessLog: { retention: $app.stage === "production" ? "3 months" : "1 week" },
  });
}

/**
 * `ANY /<prefix>` and `ANY /<prefix>/{proxy+}` to `functions/<service>/api.handler`. API Gateway
 * passes the full path; each service's Hono app is mounted under its prefix.
 */
export function routeServices(api: sst.aws.ApiGatewayV2, plan: DeploymentPlan, deployments: ServiceDeployment[], context: FunctionContext) {
  const functions = new Map<string, sst.aws.Function>();
  for (const planned of plan.functions.filter((f) => f.kind === "api")) {
    const deployment = deployments.find((d) => d.manifest.name === planned.service)!;
    functions.set(planned.resource, serviceFunction(planned, deployment, context));
  }
  for (const route of plan.routes) api.route(route.route, functions.get(route.resource)!.arn);
  return functions;
}
