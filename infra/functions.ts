import { functionEnvironment, isSealedVariable } from "./environment";
import type { PlannedFunction, ServiceDeployment } from "./plan";
import type { Secrets } from "./secrets";
import { architecture, nodejs, retries, runtime } from "./sizing";

/** What every service function is built from: the stage's shared pieces. */
export interface FunctionContext {
  bus: sst.aws.Bus;
  secrets: Secrets;
  /** `<SERVICE>_DATABASE_URL` per service: the runtime role's URL (pooled). */
  databaseUrls: Record<string, $util.Output<string>>;
  /** Public JWKS documents (not secret): user tokens and service tokens. */
  authPublicJwks: $util.Output<string>;
  servicePublicJwks: $util.Output<string>;
  /** The API's base URL, for services that call another service. */
  apiUrl: $util.Output<string>;
  /** Digest of the migrations the migrate function applied: makes functions deploy after it. */
  schemaVersion: $util.Output<string>;
  /** Where every dead-letter queue's alarm notifies (infra/dead-letters.ts). */
  alarms: sst.aws.SnsTopic;
  /** The stage's sealed variables, one linked resource each (`sealedLinks`). */
  sealed: SealedLinks;
}

export type SealedLinks = Map<string, sst.Linkable<{ variable: string; value: $util.Output<string> }>>;

const pascal = (variable: string) =>
  variable
    .toLowerCase()
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");

/**
 * A function's variables split into what goes in its configuration and what is sealed into its
 * package. Each secret variable becomes one linked resource, `Sealed<Variable>` with properties
 * `{variable, value}`, shared by every function that needs it: SST encrypts a function's links
 * into `resource.enc` in its package (AES-256-GCM; the key is the function's SST_KEY), and core's
 * withSealedSettings gives them back to the function's configuration as the same variables.
 */
export function sealedLinks(variables: Record<string, $util.Input<string>>, sealed: SealedLinks) {
  const environment: Record<string, $util.Input<string>> = {};
  const link: sst.Linkable<{ variable: string; value: $util.Output<string> }>[] = [];
  for (const [name, value] of Object.entries(variables)) {
    if (!isSealedVariable(name)) {
      environment[name] = value;
      continue;
    }
    let linkable = sealed.get(name);
    if (!linkable) {
      linkable = new sst.Linkable(`Sealed${pascal(name)}`, { properties: { variable: name, value: $util.secret(value) } });
      sealed.set(name, linkable);
    }
    link.push(linkable);
  }
  return { environment, link };
}

export function serviceEnvironment(deployment: ServiceDeployment, context: FunctionContext, job?: string): Record<string, $util.Input<string>> {
  const service = deployment.manifest.name;
  const databaseUrl = context.databaseUrls[service];
  if (!databaseUrl) throw new Error(`no database URL planned for ${service}`);
  return functionEnvironment<$util.Input<string>>(
    deployment,
    {
      app: $app.name,
      stage: $app.stage,
      busName: context.bus.name,
      databaseUrl,
      authPublicJwks: context.authPublicJwks,
      servicePublicJwks: context.servicePublicJwks,
      secrets: { AuthSigningKey: context.secrets.AuthSigningKey.value, ServiceSigningKey: context.secrets.ServiceSigningKey.value },
      apiUrl: context.apiUrl,
      schemaVersion: context.schemaVersion,
    },
    job,
  );
}

/**
 * One Lambda function of a service. Subscribers and crons are invoked asynchronously: Lambda
 * retries a failed invocation twice and then sends it to `deadLetterQueue`.
 */
export function serviceFunction(
  planned: PlannedFunction,
  deployment: ServiceDeployment,
  context: FunctionContext,
  options: { deadLetterQueue?: sst.aws.Queue } = {},
) {
  const dlq = options.deadLetterQueue;
  const { environment, link } = sealedLinks(serviceEnvironment(deployment, context, planned.kind === "api" ? undefined : planned.name), context.sealed);
  return new sst.aws.Function(planned.resource, {
    description: `${planned.service} ${planned.kind === "api" ? "API" : `${planned.kind} ${planned.name}`}`,
    handler: planned.handler,
    runtime,
    architecture,
    memory: planned.sizing.memory,
    timeout: planned.sizing.timeout,
    nodejs,
    environment,
    // The bus link grants PutEvents on this stage's bus and nothing else; the others are sealed variables.
    link: [context.bus, ...link],
    ...(dlq
      ? {
          retries: retries.functionAttempts,
          permissions: [{ actions: ["sqs:SendMessage"], resources: [dlq.arn] }],
          transform: {
            eventInvokeConfig: (args: aws.lambda.FunctionEventInvokeConfigArgs) => {
              args.maximumEventAgeInSeconds = retries.functionMaxEventAgeSeconds;
              args.destinationConfig = { onFailure: { destination: dlq.arn } };
            },
          },
        }
      : {}),
  });
}
