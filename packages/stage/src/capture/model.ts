import { join } from "node:path";
import type { Capture } from "./capture";
import type { CapturedResource } from "./mocks";

/**
 * The captured stage read as AWS and Neon would run it: functions with their code package and
 * environment, API routes, bus rules and their targets, schedules, queues, the Neon branch and
 * the deploy-time invocation. Everything here comes from the resources' resolved inputs, never
 * from infra/'s own plan, so a test of this model is a test of what `sst deploy` would create.
 */

export interface StageFunction {
  /** Physical name (what Lambda and every ARN use). */
  name: string;
  /** The SST component it belongs to: `AuthApi`, `ProfileOnUserRegistered`, `Migrate`. */
  component: string;
  arn: string;
  handler: string;
  runtime: string;
  architecture: string;
  memoryMb: number;
  timeoutSeconds: number;
  environment: Record<string, string>;
  /** The package SST uploads: `<work>/artifacts/<component>/code.zip`, and its SHA-256 from the S3 key. */
  codeZip: string;
  codeSha256: string;
  /** Names of the variables sealed into its package (`resource.enc`), never in `environment`. */
  sealed: string[];
  /** Asynchronous invocation settings (subscribers, crons, migrate). */
  asyncInvoke?: { maximumRetryAttempts: number; maximumEventAgeInSeconds?: number; onFailureDestination?: string };
}

export interface StageRoute {
  routeKey: string;
  functionName: string;
  payloadFormatVersion: string;
}

export interface StageRuleTarget {
  functionName: string;
  retryPolicy?: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number };
  deadLetterArn?: string;
}

export interface StageRule {
  name: string;
  busName: string;
  eventPattern: string;
  description?: string;
  targets: StageRuleTarget[];
}

export interface StageSchedule {
  name: string;
  expression: string;
  enabled: boolean;
  functionName: string;
  input?: string;
  retryPolicy?: { maximumRetryAttempts: number };
  deadLetterArn?: string;
}

export interface StageQueue {
  name: string;
  arn: string;
  url: string;
  retentionSeconds?: number;
  tags: Record<string, string>;
}

export interface StageAlarm {
  name: string;
  description?: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  statistic?: string;
  comparisonOperator: string;
  threshold: number;
  periodSeconds: number;
  evaluationPeriods: number;
  treatMissingData?: string;
  alarmActions: string[];
  okActions: string[];
}

export interface StageModel {
  app: Capture["app"];
  resourceCount: number;
  errors: string[];
  bus: { name: string; arn: string };
  functions: StageFunction[];
  routes: StageRoute[];
  rules: StageRule[];
  schedules: StageSchedule[];
  queues: StageQueue[];
  alarms: StageAlarm[];
  topics: { name: string; arn: string }[];
  neon: {
    projectId?: string;
    /** A branch created for this stage (non-production stages). */
    branch?: { name: string; parentId: string };
    endpoint?: { host: string; minCu?: number; maxCu?: number; suspendSeconds?: number };
  };
  /** `aws.lambda.Invocation`s: functions the deploy itself runs. */
  invocations: { name: string; functionName: string; input: string; triggers: Record<string, string> }[];
  outputs: Record<string, unknown>;
}

/** Pulumi marks secret values with this signature key; their inputs carry `{value}` under it. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Inputs with Pulumi's secret wrappers removed. */
export function unwrap<T>(value: T): T {
  if (Array.isArray(value)) return value.map(unwrap) as T;
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] === SECRET_VALUE) return unwrap(record.value) as T;
    return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, unwrap(item)])) as T;
  }
  return value;
}

const ofType = (capture: Capture, type: string) =>
  capture.resources.filter((r) => r.type === type).map((r) => ({ ...r, inputs: unwrap(r.inputs), state: unwrap(r.state) }) as CapturedResource);

const lambdaArnName = (arn: string) => arn.split(":function:")[1]?.split(":")[0] ?? arn;

type AsyncInvoke = NonNullable<StageFunction["asyncInvoke"]>;

/** A captured `aws.lambda.Function` (inputs as captured, secrets wrapped or not) as the twin runs it. */
export function stageFunction(resource: CapturedResource, work: string, invokeConfigs: ReadonlyMap<string, AsyncInvoke> = new Map()): StageFunction {
  const inputs = unwrap(resource.inputs) as {
    name: string;
    handler: string;
    runtime: string;
    architectures?: string[];
    memorySize?: number;
    timeout?: number;
    environment?: { variables?: Record<string, string> };
    s3Key?: string;
  };
  const key = /^assets\/(.+)-code-([0-9a-f]{64})\.zip$/.exec(inputs.s3Key ?? "");
  if (!key) throw new Error(`function ${resource.name}: no code package in the capture (s3Key ${inputs.s3Key})`);
  const asyncInvoke = invokeConfigs.get(inputs.name);
  return {
    name: inputs.name,
    component: key[1]!,
    arn: String(unwrap(resource.state).arn),
    handler: inputs.handler,
    runtime: inputs.runtime,
    architecture: inputs.architectures?.[0] ?? "x86_64",
    memoryMb: inputs.memorySize ?? 128,
    timeoutSeconds: inputs.timeout ?? 3,
    environment: inputs.environment?.variables ?? {},
    codeZip: join(work, "artifacts", key[1]!, "code.zip"),
    codeSha256: key[2]!,
    sealed: [],
    ...(asyncInvoke ? { asyncInvoke } : {}),
  };
}

export function stageModel(capture: Capture, work: string): StageModel {
  const invokeConfigs = new Map(
    ofType(capture, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").map((r) => {
      const inputs = r.inputs as {
        functionName: string;
        maximumRetryAttempts?: number;
        maximumEventAgeInSeconds?: number;
        destinationConfig?: { onFailure?: { destination?: string } };
      };
      return [
        inputs.functionName,
        {
          maximumRetryAttempts: inputs.maximumRetryAttempts ?? 2,
          ...(inputs.maximumEventAgeInSeconds !== undefined ? { maximumEventAgeInSeconds: inputs.maximumEventAgeInSeconds } : {}),
          ...(inputs.destinationConfig?.onFailure?.destination ? { onFailureDestination: inputs.destinationConfig.onFailure.destination } : {}),
        },
      ] as const;
    }),
  );

  const functions = ofType(capture, "aws:lambda/function:Function").map((r) => {
    const fn = stageFunction(r, work, invokeConfigs);
    return { ...fn, sealed: capture.builds[fn.component]?.sealed ?? [] };
  });

  const integrations = new Map(
    ofType(capture, "aws:apigatewayv2/integration:Integration").map((r) => {
      const inputs = r.inputs as { integrationUri: string; payloadFormatVersion?: string };
      return [`integrations/${r.name}-id`, { functionName: lambdaArnName(inputs.integrationUri), payloadFormatVersion: inputs.payloadFormatVersion ?? "1.0" }];
    }),
  );
  const routes = ofType(capture, "aws:apigatewayv2/route:Route").map((r): StageRoute => {
    const inputs = r.inputs as { routeKey: string; target: string };
    const integration = integrations.get(inputs.target);
    if (!integration) throw new Error(`route ${inputs.routeKey}: its target ${inputs.target} is not an integration of this stage`);
    return { routeKey: inputs.routeKey, ...integration };
  });

  const targets = ofType(capture, "aws:cloudwatch/eventTarget:EventTarget").map((r) => r.inputs as Record<string, unknown>);
  const rules = ofType(capture, "aws:cloudwatch/eventRule:EventRule").map((r): StageRule => {
    const inputs = r.inputs as { name?: string; eventBusName: string; eventPattern: string; description?: string };
    const name = String(r.state.name);
    return {
      name,
      busName: inputs.eventBusName,
      eventPattern: inputs.eventPattern,
      ...(inputs.description ? { description: inputs.description } : {}),
      targets: targets
        .filter((t) => t.rule === name)
        .map((t) => ({
          functionName: lambdaArnName(String(t.arn)),
          ...(t.retryPolicy ? { retryPolicy: t.retryPolicy as StageRuleTarget["retryPolicy"] } : {}),
          ...((t.deadLetterConfig as { arn?: string } | undefined)?.arn ? { deadLetterArn: (t.deadLetterConfig as { arn: string }).arn } : {}),
        })),
    };
  });

  const schedules = ofType(capture, "aws:scheduler/schedule:Schedule").map((r): StageSchedule => {
    const inputs = r.inputs as {
      name: string;
      scheduleExpression: string;
      state?: string;
      target: { arn: string; input?: string; retryPolicy?: { maximumRetryAttempts: number }; deadLetterConfig?: { arn: string } };
    };
    return {
      name: inputs.name,
      expression: inputs.scheduleExpression,
      enabled: (inputs.state ?? "ENABLED") === "ENABLED",
      functionName: lambdaArnName(inputs.target.arn),
      ...(inputs.target.input !== undefined ? { input: inputs.target.input } : {}),
      ...(inputs.target.retryPolicy ? { retryPolicy: inputs.target.retryPolicy } : {}),
      ...(inputs.target.deadLetterConfig?.arn ? { deadLetterArn: inputs.target.deadLetterConfig.arn } : {}),
    };
  });

  const queues = ofType(capture, "aws:sqs/queue:Queue").map((r): StageQueue => {
    const inputs = r.inputs as { messageRetentionSeconds?: number; tags?: Record<string, string> };
    return {
      name: String(r.state.name),
      arn: String(r.state.arn),
      url: String(r.state.url),
      ...(inputs.messageRetentionSeconds ? { retentionSeconds: inputs.messageRetentionSeconds } : {}),
      tags: inputs.tags ?? {},
    };
  });

  const alarms = ofType(capture, "aws:cloudwatch/metricAlarm:MetricAlarm").map((r): StageAlarm => {
    const inputs = r.inputs as {
      alarmDescription?: string;
      namespace: string;
      metricName: string;
      dimensions?: Record<string, string>;
      statistic?: string;
      comparisonOperator: string;
      threshold: number;
      period: number;
      evaluationPeriods: number;
      treatMissingData?: string;
      alarmActions?: string[];
      okActions?: string[];
    };
    return {
      name: String(r.state.name ?? r.name),
      ...(inputs.alarmDescription ? { description: inputs.alarmDescription } : {}),
      namespace: inputs.namespace,
      metricName: inputs.metricName,
      dimensions: inputs.dimensions ?? {},
      ...(inputs.statistic ? { statistic: inputs.statistic } : {}),
      comparisonOperator: inputs.comparisonOperator,
      threshold: inputs.threshold,
      periodSeconds: inputs.period,
      evaluationPeriods: inputs.evaluationPeriods,
      ...(inputs.treatMissingData ? { treatMissingData: inputs.treatMissingData } : {}),
      alarmActions: inputs.alarmActions ?? [],
      okActions: inputs.okActions ?? [],
    };
  });
  const topics = ofType(capture, "aws:sns/topic:Topic").map((r) => ({ name: String(r.state.name), arn: String(r.state.arn) }));

  const busResource = ofType(capture, "aws:cloudwatch/eventBus:EventBus")[0];
  const branch = ofType(capture, "neon:index/branch:Branch")[0]?.inputs as { name: string; parentId: string; projectId: string } | undefined;
  const endpoint = ofType(capture, "neon:index/endpoint:Endpoint")[0];
  const project = capture.calls.find((c) => c.token === "neon:index/getProject:getProject")?.inputs as { id?: string } | undefined;

  return {
    app: capture.app,
    resourceCount: capture.resources.length,
    errors: capture.errors,
    bus: { name: String(busResource?.state.name ?? ""), arn: String(busResource?.state.arn ?? "") },
    functions,
    routes,
    rules,
    schedules,
    queues,
    alarms,
    topics,
    neon: {
      ...(project?.id ? { projectId: project.id } : {}),
      ...(branch ? { branch: { name: branch.name, parentId: branch.parentId } } : {}),
      ...(endpoint
        ? {
            endpoint: {
              host: String(endpoint.state.host),
              minCu: endpoint.inputs.autoscalingLimitMinCu as number,
              maxCu: endpoint.inputs.autoscalingLimitMaxCu as number,
              suspendSeconds: endpoint.inputs.suspendTimeoutSeconds as number,
            },
          }
        : {}),
    },
    invocations: ofType(capture, "aws:lambda/invocation:Invocation").map((r) => {
      const inputs = r.inputs as { functionName: string; input: string; triggers?: Record<string, string> };
      return { name: r.name, functionName: inputs.functionName, input: inputs.input, triggers: inputs.triggers ?? {} };
    }),
    outputs: capture.outputs,
  };
}
