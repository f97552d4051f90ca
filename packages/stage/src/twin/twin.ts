import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAwsEndpoint } from "../aws/endpoint";
import { EventBridge } from "../aws/eventbridge";
import { LambdaAsync } from "../aws/lambda-async";
import { Queues } from "../aws/queues";
import { Scheduler } from "../aws/scheduler";
import { type StageFunction, type StageModel, stageFunction } from "../capture/model";
import { captureStageModel } from "../capture/stage";
import type { Invoke, InvokeOutcome, TwinNetwork } from "../contracts";
import { type DeployedFunction, deployFunction, unpackZip } from "../lambda/index";
import { startNeonProxy } from "../network/neon-proxy";
import { startApiGateway } from "./api-gateway";
import { startTwinPostgres, type TwinPostgres } from "./postgres";

/**
 * A deployed stage, run on this machine. The real sst.config.ts is captured for the stage; as
 * the deploy would, the capture invokes the migrate function (here: its uploaded package, run in
 * a process of its own against the twin's PostgreSQL through the Neon driver), and only then are
 * the other functions, routes, rules and schedules brought up, each exactly as captured.
 */

export interface TwinOptions {
  stage: string;
  topology: "per-service" | "single";
  /** The API's port; a free one unless set. */
  port?: number;
  /** Fire schedules on their rate (true), or only on demand (tests). */
  timers?: boolean;
  /** More deployment settings (ENCLAVE_SEED, ENCLAVE_CRONS, ...). */
  settings?: Record<string, string>;
  /** Every line the functions log, and the twin's own progress. */
  onLog?: (source: string, line: string) => void;
  /** Execution environments per function. */
  maxConcurrency?: number;
}

export interface Twin {
  url: string;
  stage: string;
  model: StageModel;
  /** What the migrate invocation answered. */
  migration: unknown;
  postgres: TwinPostgres;
  eventBridge: EventBridge;
  lambda: LambdaAsync;
  queues: Queues;
  /** SQS and Lambda's APIs on one local endpoint (AWS_ENDPOINT_URL for operators' tools). */
  awsEndpoint: string;
  scheduler: Scheduler;
  functions: ReadonlyMap<string, DeployedFunction>;
  /** Synchronous invocation by name or component (`AuthApi`). */
  invoke: (functionName: string, event: unknown) => Promise<InvokeOutcome>;
  /** The function of a component. */
  functionOf(component: string): StageFunction;
  /** Resolves when no event or asynchronous invocation is in flight. */
  idle(): Promise<void>;
  readyMs: number;
  stop(): Promise<void>;
}

export async function startTwin(options: TwinOptions): Promise<Twin> {
  const started = performance.now();
  const log = options.onLog ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), `enclave-twin-${options.stage}-`));
  const stops: (() => Promise<unknown> | unknown)[] = [() => rmSync(work, { recursive: true, force: true })];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await Promise.resolve(step()).catch(() => {});
  };
  try {
    const ownerPassword = randomBytes(24).toString("base64url");
    const postgres = await startTwinPostgres({ ownerPassword });
    stops.push(() => postgres.stop());
    const proxy = await startNeonProxy({ target: { host: postgres.host, port: postgres.port } });
    stops.push(() => proxy.close());

    const functions = new Map<string, DeployedFunction>();
    const invoke: Invoke = async (name, event) => {
      const fn = functions.get(name);
      if (!fn) return { ok: false, errorType: "ResourceNotFoundException", errorMessage: `Function not found: ${name}`, durationMs: 0, coldStart: false };
      return fn.invoke(event);
    };
    stops.push(async () => {
      await Promise.allSettled([...functions.values()].map((fn) => fn.close()));
    });

    const queues = new Queues({ dir: join(work, "queues") });
    const lambda = new LambdaAsync({ invoke, queues });
    stops.push(() => lambda.stop());
    const eventBridge = new EventBridge({ lambda, queues });
    const eventBridgeEndpoint = await eventBridge.listen();
    stops.push(() => eventBridge.close());

    let network: TwinNetwork = { region: "us-east-1", neonProxyPort: proxy.port, eventBridgeEndpoint };
    const deploy = async (fn: StageFunction) => {
      const existing = functions.get(fn.name);
      if (existing) return existing;
      const zip = readFileSync(fn.codeZip);
      const digest = createHash("sha256").update(zip).digest("hex");
      if (digest !== fn.codeSha256) throw new Error(`${fn.component}: its package does not match the uploaded digest`);
      const codeDir = join(work, "functions", fn.component);
      mkdirSync(codeDir, { recursive: true });
      await unpackZip(fn.codeZip, codeDir);
      const deployed = deployFunction(
        { name: fn.name, codeDir, handler: fn.handler, environment: fn.environment, timeoutSeconds: fn.timeoutSeconds, memoryMb: fn.memoryMb },
        network,
        { onLog: (_name, line) => log(fn.component, line), ...(options.maxConcurrency ? { maxConcurrency: options.maxConcurrency } : {}) },
      );
      functions.set(fn.name, deployed);
      return deployed;
    };

    let migration: unknown;
    const stageWork = join(work, "stage");
    log("twin", `capturing stage ${options.stage} (${options.topology}) from sst.config.ts`);
    const { model } = await captureStageModel({
      stage: options.stage,
      topology: options.topology,
      work: stageWork,
      neonOwnerPassword: ownerPassword,
      ...(options.settings ? { settings: options.settings } : {}),
      // The deploy invokes the migrate function and waits for it, as aws.lambda.Invocation does.
      invoke: async ({ function: resource, input }) => {
        const fn = stageFunction(resource, stageWork);
        log("twin", `invoking ${fn.component} as the deploy does`);
        await deploy(fn);
        const outcome = await invoke(fn.name, JSON.parse(String(input)));
        if (!outcome.ok) throw new Error(`${fn.component} failed: ${outcome.errorType}: ${outcome.errorMessage}`);
        migration = outcome.result;
        return JSON.stringify(outcome.result);
      },
    });
    if (model.errors.length > 0) throw new Error(`the stage's program failed:\n  ${model.errors.join("\n  ")}`);

    // Its schedules are set once the functions they target are up.
    const scheduler = new Scheduler({ lambda, queues, timers: options.timers ?? true });
    stops.push(() => scheduler.stop());
    const scheduleOf = (name: string) =>
      model.schedules.find((s) => s.name === name || s.functionName === name || model.functions.find((f) => f.component === name)?.name === s.functionName);
    const control = async (method: string, path: string, text: string): Promise<{ status: number; body: unknown }> => {
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        return { status: 400, body: { message: "the body must be JSON" } };
      }
      if (method === "GET" && path === "/_twin/events")
        return { status: 200, body: { entries: eventBridge.entries().slice(-500), deliveries: eventBridge.deliveries().slice(-500) } };
      if (method === "GET" && path === "/_twin/queues")
        return { status: 200, body: { queues: queues.queues().map((q) => ({ ...q, messages: queues.messages(q.arn) })) } };
      if (method === "POST" && path === "/_twin/queues/redrive") {
        const queue = String(body.queue ?? "");
        if (!queue) return { status: 400, body: { message: 'name the queue: {"queue": "<name or ARN>", "messageIds": [...]?}' } };
        const ids = Array.isArray(body.messageIds) ? body.messageIds.map(String) : undefined;
        return { status: 200, body: { results: await queues.redrive(queue, { lambda, eventBridge }, ids) } };
      }
      if (method === "POST" && path === "/_twin/schedules/fire") {
        const schedule = scheduleOf(String(body.name ?? ""));
        if (!schedule) return { status: 404, body: { message: `no schedule ${String(body.name)}` } };
        return { status: 200, body: await scheduler.fire(schedule.name) };
      }
      return { status: 404, body: { message: "twin endpoints: GET /_twin/events, GET /_twin/queues, POST /_twin/queues/redrive, POST /_twin/schedules/fire" } };
    };

    const apiUrl = String(model.outputs.api ?? "");
    const gateway = await startApiGateway({
      routes: model.routes,
      invoke,
      apiId: new URL(apiUrl).hostname.split(".")[0]!,
      accountId: model.app.account,
      control,
      ...(options.port !== undefined ? { port: options.port } : {}),
    });
    stops.push(() => gateway.close());
    // Calls a function makes to the stage's own API URL (payments looking up a recipient) reach this gateway.
    network = { ...network, apiOrigins: { [new URL(apiUrl).origin]: gateway.url } };
    for (const fn of model.functions) await deploy(fn);

    lambda.setFunctions(
      model.functions.map((fn) => ({
        name: fn.name,
        arn: fn.arn,
        maximumRetryAttempts: fn.asyncInvoke?.maximumRetryAttempts ?? 2,
        ...(fn.asyncInvoke?.maximumEventAgeInSeconds !== undefined ? { maximumEventAgeInSeconds: fn.asyncInvoke.maximumEventAgeInSeconds } : {}),
        ...(fn.asyncInvoke?.onFailureDestination ? { onFailure: fn.asyncInvoke.onFailureDestination } : {}),
      })),
    );
    for (const queue of model.queues) queues.declare(queue.arn, queue.tags);
    const awsEndpoint = await startAwsEndpoint({ queues, invoke, lambda, region: model.app.region, account: model.app.account });
    stops.push(() => awsEndpoint.close());
    const arnOf = (name: string) => model.functions.find((f) => f.name === name)?.arn ?? name;
    eventBridge.setRules(
      model.rules.map((rule) => ({
        name: rule.name,
        eventBusName: rule.busName,
        eventPattern: rule.eventPattern,
        targets: rule.targets.map((target) => ({
          arn: arnOf(target.functionName),
          ...(target.retryPolicy ? { retryPolicy: target.retryPolicy } : {}),
          ...(target.deadLetterArn ? { deadLetterArn: target.deadLetterArn } : {}),
        })),
      })),
    );
    scheduler.setSchedules(
      model.schedules.map((schedule) => ({
        name: schedule.name,
        scheduleExpression: schedule.expression,
        state: schedule.enabled ? "ENABLED" : "DISABLED",
        target: {
          arn: arnOf(schedule.functionName),
          ...(schedule.input !== undefined ? { input: schedule.input } : {}),
          ...(schedule.retryPolicy ? { retryPolicy: schedule.retryPolicy } : {}),
          ...(schedule.deadLetterArn ? { deadLetterArn: schedule.deadLetterArn } : {}),
        },
      })),
    );
    if (options.timers ?? true) scheduler.start();

    const byComponent = (component: string) => {
      const fn = model.functions.find((f) => f.component === component || f.name === component);
      if (!fn) throw new Error(`the stage has no function ${component}`);
      return fn;
    };
    return {
      url: gateway.url,
      stage: options.stage,
      model,
      migration,
      postgres,
      eventBridge,
      lambda,
      queues,
      awsEndpoint: awsEndpoint.url,
      scheduler,
      functions,
      invoke: (name, event) => invoke(functions.has(name) ? name : byComponent(name).name, event),
      functionOf: byComponent,
      // Deliveries wait for the invocations they start, which register the events they publish.
      idle: () => eventBridge.idle(),
      readyMs: Math.round(performance.now() - started),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
