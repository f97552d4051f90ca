import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/** A drizzle database, whatever driver is underneath. */
export type Db = PgDatabase<PgQueryResultHKT>;
/** A database or a transaction: everything that can run a query. */
export type Queryable = Pick<Db, "select" | "insert" | "update" | "delete" | "execute" | "transaction">;

export type DriverKind = "pglite" | "pg" | "neon";

export interface Database {
  readonly kind: DriverKind;
  readonly db: Db;
  /** Statements sent to the server since start; what the round-trip tests and benchmarks read. */
  readonly stats: { queries: number };
  /** The driver itself, bypassing drizzle (benchmarks compare against it). */
  rawQuery(text: string, params?: unknown[]): Promise<unknown>;
  /** Runs `SELECT 1` and reports how long it took. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Max connections for server drivers (pg, neon). Lambda: 1 per instance is plenty. */
  maxConnections?: number;
  /** `host:port/path` of a WebSocket-to-TCP proxy for the Neon driver (local tests only). */
  neonWsProxy?: string;
  /** Called for every statement, e.g. to count round trips. */
  onQuery?: (sql: string) => void;
  /**
   * How long a statement outside a transaction (what an API route runs) may go unanswered before
   * it fails as a connection error (503 `unavailable`), so a stalled server or network cannot
   * hold a request until its function's timeout. Unset: no limit. Transactions (consumers,
   * sweepers, migrations) are bounded by their function's timeout instead.
   */
  queryTimeoutMs?: number;
}

export function driverFor(url: string): DriverKind {
  if (url.startsWith("pglite://")) return "pglite";
  const parsed = new URL(url);
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) {
    throw new Error(`Unsupported database URL scheme "${parsed.protocol}" (use pglite://, postgres:// or a Neon URL)`);
  }
  if (parsed.searchParams.get("driver") === "neon" || parsed.hostname.endsWith(".neon.tech")) return "neon";
  return "pg";
}

/** The URL without our own `driver` parameter, which PostgreSQL would reject. */
export function serverUrl(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete("driver");
  return parsed.toString();
}

/**
 * Opens a database for a URL. Drivers are imported on demand so a Lambda bundle carries (and
 * loads) only the one it uses: the Neon WebSocket driver costs ~150 KB and is loaded on the
 * first query, not at cold start.
 */
export async function openDatabase(url: string, options: DatabaseOptions = {}): Promise<Database> {
  const stats = { queries: 0 };
  const logger = {
    logQuery(query: string) {
      stats.queries++;
      options.onQuery?.(query);
    },
  };
  const kind = driverFor(url);
  const opened =
    kind === "pglite"
      ? await (await import("./pglite")).openPglite(url, logger)
      : kind === "pg"
        ? await (await import("./pg")).openPg(serverUrl(url), logger, options)
        : await (await import("./neon")).openNeon(serverUrl(url), logger, options);
  return {
    kind,
    db: opened.db,
    stats,
    async ping() {
      const started = performance.now();
      await opened.db.execute(sql`select 1`);
      return Math.round((performance.now() - started) * 10) / 10;
    },
    rawQuery: opened.rawQuery,
    close: opened.close,
  };
}

export interface OpenedDriver {
  db: Db;
  rawQuery(text: string, params?: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

/** Rows of a raw `execute()` result; every driver we support answers `{ rows }`. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
