import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import type { FunctionSpec, TwinNetwork } from "../contracts";

/** Stand-ins for the execution role's temporary credentials: never valid anywhere, always present, as in Lambda. */
export const FAKE_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: "ASIATWINSTAGEFAKEKEY",
  AWS_SECRET_ACCESS_KEY: "twin/stage/fake/secret/access/key/000000",
  AWS_SESSION_TOKEN: "twin-stage-fake-session-token",
} as const;

/** Lambda's log stream name of a new execution environment: `2026/11/05/[$LATEST]<32 hex>`. */
export function logStreamName(now = new Date()): string {
  const day = now.toISOString().slice(0, 10).replaceAll("-", "/");
  return `${day}/[$LATEST]${randomBytes(16).toString("hex")}`;
}

/**
 * A function process's whole environment: the function's own variables, then what Lambda's
 * runtime sets (those names are reserved, so a function cannot override them), then where the
 * twin's network sends AWS calls. Nothing of the emulator's own environment.
 */
export function functionEnvironment(
  spec: FunctionSpec,
  network: TwinNetwork,
  runtime: { nodeBinary: string; runtimeDir: string; logStreamName: string },
): Record<string, string> {
  const env: Record<string, string> = {
    ...spec.environment,
    _HANDLER: spec.handler,
    AWS_REGION: network.region,
    AWS_DEFAULT_REGION: network.region,
    AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
    AWS_LAMBDA_FUNCTION_NAME: spec.name,
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: runtime.logStreamName,
    LAMBDA_TASK_ROOT: spec.codeDir,
    LAMBDA_RUNTIME_DIR: runtime.runtimeDir,
    TZ: ":UTC",
    LANG: "en_US.UTF-8",
    // Lambda's PATH, with the directory of the node binary standing in for /var/lang/bin.
    PATH: `${dirname(runtime.nodeBinary)}:/usr/local/bin:/usr/bin/:/bin:/opt/bin`,
    ...FAKE_CREDENTIALS,
  };
  // The SDK's service-specific endpoint variable: every EventBridge client the function makes
  // without an explicit endpoint resolves it (checked with @aws-sdk/client-eventbridge 3.1169).
  // Lambda's bootstrap sets NODE_PATH only when the function does not.
  env.NODE_PATH ??= `/opt/nodejs/node24/node_modules:/opt/nodejs/node_modules:${runtime.runtimeDir}/node_modules:${runtime.runtimeDir}:${spec.codeDir}`;
  if (network.eventBridgeEndpoint) env.AWS_ENDPOINT_URL_EVENTBRIDGE = network.eventBridgeEndpoint;
  return env;
}

/** The flags Lambda's Node.js bootstrap starts node with; the heap limits follow the memory size. */
export function nodeFlags(memoryMb: number): string[] {
  const flags = ["--expose-gc", "--max-http-header-size=81920"];
  const newSpace = Math.floor(memoryMb / 10);
  const semiSpace = Math.floor(newSpace / 2);
  if (semiSpace >= 1) flags.push(`--max-semi-space-size=${semiSpace}`, `--max-old-space-size=${memoryMb - newSpace}`);
  return flags;
}
