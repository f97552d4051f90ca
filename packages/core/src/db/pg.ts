import type { Logger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { DatabaseOptions, Db, OpenedDriver } from "./index";

export async function openPg(url: string, logger: Logger, options: DatabaseOptions): Promise<OpenedDriver> {
  const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: 5_000 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  const db = drizzle({ client: pool, logger }) as unknown as Db;
  return { db, rawQuery: (text, params) => pool.query(text, params), close: () => pool.end() };
}
