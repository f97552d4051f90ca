import type { Logger } from "drizzle-orm/logger";
import type { DatabaseOptions, Db, OpenedDriver } from "./index";
import { drizzleNeonHttp, neonHttpClient } from "./neon-http";

/**
 * Neon, two ways. A statement outside an interactive transaction (every API route's read and
 * write: each write is one statement) goes over Neon's HTTP endpoint, one request each, with no
 * connection to open first. `db.transaction()` (consumers, the sweeper, the migrator) gets a
 * WebSocket Pool, loaded and connected on its first use, so a process that never needs one never
 * loads the WebSocket driver.
 *
 * With `neonWsProxy` (local tests: `host:port/v1`), the HTTP endpoint is `/sql` on the same host.
 */
export async function openNeon(url: string, logger: Logger, options: DatabaseOptions): Promise<OpenedDriver> {
  const proxy = options.neonWsProxy;
  const client = neonHttpClient(url, {
    ...(proxy ? { endpoint: `http://${proxy.replace(/\/.*$/, "")}/sql` } : {}),
    ...(options.queryTimeoutMs ? { timeoutMs: options.queryTimeoutMs } : {}),
  });
  const db = drizzleNeonHttp(client, logger);

  let pool: Promise<Awaited<ReturnType<typeof openNeonPool>>> | undefined;
  const webSocket = () => {
    pool ??= openNeonPool(url, logger, options).catch((error) => {
      pool = undefined;
      throw error;
    });
    return pool;
  };
  const transaction = (async (...args: Parameters<Db["transaction"]>) => (await webSocket()).db.transaction(...args)) as Db["transaction"];
  Object.defineProperty(db, "transaction", { value: transaction });
  // A migration marked no-transaction (CREATE INDEX CONCURRENTLY) needs a session of its own, which
  // the runner takes with `$client.connect()` as it does from a node-postgres pool: a WebSocket connection.
  Object.defineProperty(db, "$client", { value: { connect: async () => (await webSocket()).pool.connect() } });

  return {
    db,
    rawQuery: (text, params) => client(text, params ?? [], { fullResults: true }),
    async close() {
      client.close();
      const opened = pool;
      pool = undefined;
      if (opened) await (await opened).end();
    },
  };
}

/** The Neon serverless driver over WebSockets: a Pool, for interactive transactions. Node >= 22 has a global WebSocket. */
async function openNeonPool(url: string, logger: Logger, options: DatabaseOptions) {
  const [{ neonConfig, Pool }, { drizzle }] = await Promise.all([import("@neondatabase/serverless"), import("drizzle-orm/neon-serverless")]);
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
  return { db, pool, end: () => pool.end() };
}
