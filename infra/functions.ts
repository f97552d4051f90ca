import { functionEnvironment } from "./environment";
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
  return new sst.aws.Function(planned.resource, {
    description: `${planned.service} ${planned.kind === "api" ? "API" : `${planned.kind} ${planned.name}`}`,
    handler: planned.handler,
    runtime,
    architecture,
    memory: planned.sizing.memory,
    timeout: planned.sizing.timeout,
    nodejs,
    environment: serviceEnvironment(deployment, context, planned.kind === "api" ? undefined : planned.name),
    // The bus link grants PutEvents on this stage's bus and nothing else.
    link: [context.bus],
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

/** A dead-letter queue that keeps messages for 14 days. */
export function deadLetterQueue(name: string, retentionSeconds: number) {
  return new sst.aws.Queue(name, {
    transform: {
      queue: (args) => {
        args.messageRetentionSeconds = retentionSeconds;
      },
    },
  });
}
