import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request } from "node:http";

/**
 * Runs an SST program under Pulumi's unit-test mocks and records every resource it registers,
 * with its resolved inputs. This module is bundled with the platform and sst.config.ts and
 * runs in a process of its own (capture.ts starts it); it talks back to that process over SST's
 * own RPC channel (`$SST_SERVER/rpc`), which also answers the components' build requests.
 *
 * The fake cloud answers what a first deploy would: ids, ARNs and names derived from the
 * resource names, a Neon project with a default branch, and generated passwords. Invoking a
 * function during the deploy (`aws.lambda.Invocation`) is forwarded to the capturing process,
 * which runs the real function in the stage twin, or answers for it when only planning.
 */

interface PulumiRuntime {
  setMocks(mocks: Mocks, project?: string, stack?: string, preview?: boolean): Promise<void> | void;
  runInPulumiStack(init: () => Promise<unknown>): Promise<unknown>;
  disconnect(): Promise<void>;
}
interface Mocks {
  newResource(args: { type: string; name: string; inputs: Record<string, unknown>; provider?: string; custom?: boolean; id?: string }): Promise<{
    id: string | undefined;
    state: Record<string, unknown>;
  }>;
  call(args: { token: string; inputs: Record<string, unknown>; provider?: string }): Promise<Record<string, unknown>>;
}
interface SstConfig {
  app(input: { stage: string }): { name: string; removal?: string; protect?: boolean; home: string; providers?: Record<string, unknown> };
  run(): Promise<unknown>;
}

export interface CapturedResource {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  /** What the fake cloud answered: the outputs other resources were built from. */
  state: Record<string, unknown>;
}

export interface CaptureDocument {
  app: { name: string; stage: string; removal: string; protect: boolean; region: string; account: string };
  resources: CapturedResource[];
  calls: { token: string; inputs: Record<string, unknown> }[];
  outputs: Record<string, unknown>;
  /** Program errors as Pulumi's language host reports them: any of these fails a deploy. */
  errors: string[];
}

export const fakeAccount = "123456789012";

/** The fake Neon project's branches: production's, and a schema-only `seed` branch previews start from. */
const fakeBranches = [
  { id: "br-twin-main", name: "main", parentId: "", primary: true, logicalSize: 0 },
  { id: "br-twin-seed", name: "seed", parentId: "br-twin-main", primary: false, logicalSize: 0 },
];

async function rpc<T>(method: string, params: unknown): Promise<T> {
  const url = new URL(`${process.env.SST_SERVER}/rpc`);
  const body = JSON.stringify({ jsonrpc: "1.0", method, params: [params] });
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      { hostname: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { "content-type": "application/json" } },
      (res) => {
        let data = "";
        res.on("data", (chunk) => (data += chunk));
        res.on("end", () => resolve(data));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  const answer = JSON.parse(text) as { result?: T; error?: string };
  if (answer.error) throw new Error(answer.error);
  return answer.result as T;
}

/**
 * A value without Pulumi's secret wrapper. A function linked to a secret has secret inputs
 * (its build, and so its name, depends on the sealed links), and the wrapper is what arrives.
 */
const plain = (value: unknown): unknown =>
  value !== null && typeof value === "object" && (value as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === "1b47061264138c4ac30d75fd1eb44270"
    ? (value as { value: unknown }).value
    : value;

const password = (length: number) => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(randomBytes(length), (byte) => alphabet[byte % alphabet.length]).join("");
};

export async function runUnderMocks(options: {
  pulumi: { runtime: PulumiRuntime };
  run: (program: () => Promise<unknown>) => Promise<unknown>;
  config: SstConfig;
}) {
  const stage = process.env.TWIN_CAPTURE_STAGE!;
  const out = process.env.TWIN_CAPTURE_OUT!;
  const app = options.config.app({ stage });
  const awsProvider = (app.providers?.aws ?? {}) as { region?: string };
  const region = awsProvider.region ?? "us-east-1";

  const document: CaptureDocument = {
    app: { name: app.name, stage, removal: app.removal ?? "retain", protect: app.protect ?? false, region, account: fakeAccount },
    resources: [],
    calls: [],
    outputs: {},
    errors: [],
  };
  // One failure surfaces once per output that depends on it: report each message once.
  const report = (error: unknown) => {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (!document.errors.includes(message)) document.errors.push(message);
  };
  let written = false;
  const finish = () => {
    if (written) return;
    written = true;
    writeFileSync(
      out,
      JSON.stringify(document, (_key, value) => (typeof value === "bigint" ? String(value) : value)),
    );
  };
  // A program error can leave outputs that never resolve, so the run never settles: what was
  // captured up to then, errors included, is still written when the process ends.
  process.on("exit", finish);
  process.on("unhandledRejection", report);
  process.on("uncaughtException", report);

  const functionsByName = new Map<string, CapturedResource>();
  const arn = (service: string, resource: string) => `arn:aws:${service}:${region}:${fakeAccount}:${resource}`;
  const neonHost = (id: string) => `${id}.${region}.aws.neon.tech`;

  /** Outputs the fake cloud computes for a resource, on top of its inputs. */
  async function computed(type: string, name: string, inputs: Record<string, unknown>, id: string): Promise<Record<string, unknown>> {
    const physical = (inputs.name as string | undefined) ?? name;
    switch (type) {
      case "aws:lambda/function:Function":
        return { arn: arn("lambda", `function:${physical}`), name: physical, invokeArn: `${arn("lambda", `function:${physical}`)}/invocations` };
      case "aws:sqs/queue:Queue":
        return { arn: arn("sqs", physical), name: physical, url: `https://sqs.${region}.amazonaws.com/${fakeAccount}/${physical}` };
      case "aws:cloudwatch/eventBus:EventBus":
        return { arn: arn("events", `event-bus/${physical}`), name: physical };
      case "aws:cloudwatch/eventRule:EventRule":
        return { arn: arn("events", `rule/${physical}`), name: physical };
      case "aws:apigatewayv2/api:Api":
        return {
          apiEndpoint: `https://${id}.execute-api.${region}.amazonaws.com`,
          executionArn: arn("execute-api", id),
          arn: arn("apigateway", `/apis/${id}`),
        };
      case "aws:scheduler/schedule:Schedule":
        return { arn: arn("scheduler", `schedule/default/${physical}`), name: physical };
      case "neon:index/branch:Branch":
        return { id };
      case "neon:index/endpoint:Endpoint":
        return { id, host: neonHost(id) };
      case "random:index/randomBytes:RandomBytes": {
        const bytes = randomBytes(Number(inputs.length ?? 32));
        return { base64: bytes.toString("base64"), hex: bytes.toString("hex") };
      }
      case "random:index/randomPassword:RandomPassword":
        return { result: password(Number(inputs.length ?? 32)) };
      case "aws:lambda/invocation:Invocation": {
        const fn = functionsByName.get(String(plain(inputs.functionName)));
        if (!fn) throw new Error(`aws.lambda.Invocation ${name}: no function named ${String(plain(inputs.functionName))} in this stage`);
        const result = await rpc<string>("Twin.Invoke", { invocation: name, function: fn, input: inputs.input });
        return { result };
      }
      default:
        return { arn: arn(type.split(":")[1]?.split("/")[0] ?? "unknown", physical), name: physical };
    }
  }

  const mocks: Mocks = {
    async newResource({ type, name, inputs, custom, id }) {
      const resourceId = id || (type.startsWith("neon:") ? `${type.endsWith("Branch") ? "br" : "ep"}-twin-${name.toLowerCase()}-${stage}` : `${name}-id`);
      const state = { ...inputs, ...(custom === false ? {} : await computed(type, name, inputs, resourceId)) };
      const record: CapturedResource = { type, name, custom: custom !== false, inputs, state };
      document.resources.push(record);
      if (type === "aws:lambda/function:Function") functionsByName.set(String(plain(state.name)), record);
      return { id: resourceId, state };
    },
    async call({ token, inputs }) {
      document.calls.push({ token, inputs });
      switch (token) {
        case "aws:index/getRegion:getRegion":
          return { name: region, region, id: region, description: region };
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { accountId: fakeAccount, arn: `arn:aws:iam::${fakeAccount}:user/twin`, userId: "TWIN", id: fakeAccount };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
        case "aws:iam/getPolicyDocument:getPolicyDocument":
          return { json: JSON.stringify({ Version: "2012-10-17", Statement: inputs.statements ?? [] }) };
        case "neon:index/getProject:getProject":
          return {
            id: inputs.id,
            name: app.name,
            defaultBranchId: "br-twin-main",
            databaseHost: neonHost("ep-twin-main"),
            databaseUser: "neondb_owner",
            databaseName: "neondb",
          };
        case "neon:index/getBranches:getBranches":
          return { projectId: inputs.projectId, branches: fakeBranches };
        case "neon:index/getBranchRolePassword:getBranchRolePassword":
          return { password: process.env.TWIN_NEON_OWNER_PASSWORD ?? password(32) };
        default:
          throw new Error(`the stage capture has no answer for ${token}: add one in packages/stage/src/capture/mocks.ts`);
      }
    },
  };

  try {
    await options.pulumi.runtime.setMocks(mocks, app.name, stage, false);
    const outputs = await options.pulumi.runtime.runInPulumiStack(() => options.run(options.config.run));
    await options.pulumi.runtime.disconnect();
    document.outputs = (outputs ?? {}) as Record<string, unknown>;
  } catch (error) {
    report(error);
  }
  // Late rejections from outputs nobody awaited surface on the next turns of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  writeFileSync(
    out,
    JSON.stringify(document, (_key, value) => (typeof value === "bigint" ? String(value) : value)),
  );
}
