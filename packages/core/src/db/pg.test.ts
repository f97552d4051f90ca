import { sql } from "drizzle-orm";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { isConnectionError } from "../errors";
import { testServerUrl } from "../testing/database";
import { openDatabase, rowsOf } from "./index";

describe.skipIf(!testServerUrl)("node-postgres with a query timeout (PostgreSQL)", () => {
  test("a statement outside a transaction fails after the timeout as a connection error (503); transactions, sessions and submittables are not cut", async () => {
    const database = await openDatabase(testServerUrl!, { queryTimeoutMs: 300, maxConnections: 2 });
    try {
      await database.db.execute(sql`select 1`);
      const started = performance.now();
      const error = await database.db.execute(sql`select pg_sleep(2)`).catch((e: unknown) => e);
      // Cut off by the timeout, not answered after the 2 s sleep.
      expect(performance.now() - started).toBeLessThan(1_900);
      expect(isConnectionError(error)).toBe(true);
      expect(String((error as { cause?: Error }).cause?.message)).toBe("Query read timeout");
      // The pool goes on with a fresh connection.
      expect(rowsOf(await database.db.execute(sql`select 1 as n`))).toEqual([{ n: 1 }]);
      // A transaction (consumers, sweepers) and a session of its own (a concurrent index build) run as long as they need.
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_sleep(0.6)`);
      });
      const pool = (database.db as unknown as { $client: pg.Pool }).$client;
      const session = await pool.connect();
      try {
        await session.query("select pg_sleep(0.6)");
      } finally {
        session.release();
      }
      // A submittable (pg's Query) goes through as it is.
      const query = new pg.Query("select 2 as n");
      const rows = new Promise<unknown[]>((resolve, reject) => {
        const seen: unknown[] = [];
        query.on("row", (row: unknown) => seen.push(row));
        query.on("end", () => resolve(seen));
        query.on("error", reject);
      });
      void pool.query(query as never);
      expect(await rows).toEqual([{ n: 2 }]);
    } finally {
      await database.close();
    }
  });
});
