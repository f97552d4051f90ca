/**
 * How every function is built and sized: runtime, architecture, bundling, memory and timeouts per
 * kind of function, retries and dead-letter retention.
 */

export type Size = `${number} MB`;
export type Timeout = `${number} ${"second" | "seconds" | "minute" | "minutes"}`;

export interface FunctionSizing {
  memory?: Size;
  timeout?: Timeout;
}

export type FunctionKind = "api" | "subscriber" | "cron" | "migrate";

/**
 * Sizing per kind of function. Lambda gives CPU in proportion to memory (one full vCPU at
 * 1769 MB), so memory is chosen for CPU as much as for RAM. API functions: 1024 MB keeps cold
 * starts short (bundle parse and TLS to Neon are CPU-bound); 10 s is well inside API Gateway's
 * 30 s limit. Subscribers and crons are not latency-sensitive: 512 MB. The migrate function
 * waits on a compute that may be waking up and on DDL: 5 minutes.
 */
export const defaultSizing: Record<FunctionKind, Required<FunctionSizing>> = {
  api: { memory: "1024 MB", timeout: "10 seconds" },
  subscriber: { memory: "512 MB", timeout: "30 seconds" },
  cron: { memory: "512 MB", timeout: "60 seconds" },
  migrate: { memory: "1024 MB", timeout: "5 minutes" },
};

/** Every function: Node 24 on Graviton (arm64 costs about 20% less per GB-second than x86). */
export const runtime = "nodejs24.x" as const;
export const architecture = "arm64" as const;

/**
 * Packages a function bundle must never contain. Core picks the database driver by URL and
 * imports it on demand; PGlite (local and tests) and node-postgres (a plain PostgreSQL server)
 * are never used in the cloud, where every URL is a Neon URL.
 */
export const unbundled = ["@electric-sql/pglite", "pg", "pg-native"];

/**
 * Bundling: ESM, minified, and split into chunks. Splitting matters: without it esbuild hoists
 * the lazily loaded drivers' imports of the unbundled packages to the top of the one output
 * file, and the function fails at cold start looking for `@electric-sql/pglite`. With it, each
 * dynamically imported module (driver, EventBridge SDK, OpenAPI generator) is its own chunk,
 * loaded only when used. `npm run infra:check` builds every function this way and loads it.
 */
export const nodejs = {
  format: "esm" as const,
  minify: true,
  splitting: true,
  esbuild: { external: unbundled },
};

/** Dead-letter queues keep a failed event or job for 14 days (the SQS maximum). */
export const deadLetterRetentionSeconds = 14 * 24 * 3600;

/**
 * Retries. A subscriber or cron function that throws is retried twice by Lambda's asynchronous
 * invocation (3 attempts), then the event goes to the function's dead-letter queue. EventBridge
 * and EventBridge Scheduler retry their own delivery failures (throttling, a missing
 * permission) per the target retry policy, then dead-letter the event to the same queue.
 */
export const retries = {
  functionAttempts: 2,
  functionMaxEventAgeSeconds: 6 * 3600,
  deliveryAttempts: 185,
  deliveryMaxEventAgeSeconds: 24 * 3600,
  cronDeliveryAttempts: 3,
};
