/**
 * The seams between the stage twin's parts: the Lambda emulator (lambda/), the EventBridge,
 * Scheduler and SQS emulators, and the orchestrator that wires them from a captured stage.
 */

/** One deployed function as the capture declares it. */
export interface FunctionSpec {
  /** The function's physical name (what `aws.lambda.Function` gets as `name`); logs and errors use it. */
  name: string;
  /** The unpacked code package: what Lambda puts in /var/task (bundle plus `copyFiles`). */
  codeDir: string;
  /** Lambda's handler string, relative to codeDir: `api.handler`, `functions/migrate.handler`. */
  handler: string;
  /** Exactly the function's configured environment variables; nothing else of the caller's environment. */
  environment: Record<string, string>;
  timeoutSeconds: number;
  memoryMb: number;
}

/** The twin's network: where a function's calls to Neon and to EventBridge land on this machine. */
export interface TwinNetwork {
  region: string;
  /** Port of the local WebSocket proxy standing in for Neon's (`*.neon.tech` hosts go there). */
  neonProxyPort: number;
  /** `http://127.0.0.1:<port>` of the local EventBridge endpoint. */
  eventBridgeEndpoint?: string;
  /** The stage's own public origins (its API Gateway URL) and where they are served on this machine. */
  apiOrigins?: Record<string, string>;
}

/** What one invocation came to, as Lambda reports it. */
export type InvokeOutcome =
  | { ok: true; result: unknown; durationMs: number; coldStart: boolean }
  | { ok: false; errorType: string; errorMessage: string; durationMs: number; coldStart: boolean; timedOut?: boolean };

/** Synchronous invocation of a deployed function by name (RequestResponse). */
export type Invoke = (functionName: string, event: unknown) => Promise<InvokeOutcome>;
