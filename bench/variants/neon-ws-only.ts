// The Neon driver as it was before the HTTP endpoint: every statement over a WebSocket Pool.
// Built into a variant of the auth API (bench/lambda-build.ts) to measure what the HTTP path changed.
import { neonConfig, Pool } from "@neondatabase/serverless";
import type { Logger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/neon-serverless";
import type { DatabaseOptions, Db, OpenedDriver } from "../../packages/core/src/db/index";

/**
 * The Neon serverless driver over WebSockets: a Pool, so interactive transactions and the
 * migrator work (the HTTP driver has neither). Node >= 22 has a global WebSocket.
 */
export async function openNeon(url: string, logger: Logger, options: DatabaseOptions): Promise<OpenedDriver> {
  if (options.neonWsProxy) {
    const proxy = options.neonWsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: url, max: options.maxConnections ?? 10 });
  pool.on("error", () => {});
  const db = drizzle({ client: pool, logger }) as unknown as Db;
  return { db, rawQuery: (text, params) => pool.query(text, params), close: () => pool.end() };
}
