import type { Logger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { DatabaseOptions, Db, OpenedDriver } from "./index";

/**
 * A pool whose own queries (drizzle's statements outside a transaction) carry pg's read timeout;
 * a transaction's or a migration's connection, taken with `connect()`, has none.
 */
class TimedPool extends pg.Pool {
  constructor(
    config: pg.PoolConfig,
    private readonly timeoutMs: number,
  ) {
    super(config);
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's query has many overloads; this only adds a field to the first argument
  override query(config: any, ...rest: any[]): any {
    // A submittable (pg's Query, a cursor) is passed on as it is: copying it would lose its methods.
    if (typeof config?.submit === "function") return (super.query as (...args: unknown[]) => unknown)(config, ...rest);
    const timed = typeof config === "string" ? { text: config, query_timeout: this.timeoutMs } : { ...config, query_timeout: this.timeoutMs };
    return (super.query as (...args: unknown[]) => unknown)(timed, ...rest);
  }
}

export async function openPg(url: string, logger: Logger, options: DatabaseOptions): Promise<OpenedDriver> {
  const config = { connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: 5_000 };
  const pool = options.queryTimeoutMs ? new TimedPool(config, options.queryTimeoutMs) : new pg.Pool(config);
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  const db = drizzle({ client: pool, logger }) as unknown as Db;
  return { db, rawQuery: (text, params) => pool.query(text, params), close: () => pool.end() };
}
