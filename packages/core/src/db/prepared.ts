import type { SQL } from "drizzle-orm";
import type { PgDialect } from "drizzle-orm/pg-core";
import { type Db, rowsOf } from "./index";

const byDatabase = new WeakMap<object, Map<string, unknown>>();

/**
 * A prepared query built once per database handle. Hot reads use it so drizzle does not rebuild
 * the SQL on every request, and node-postgres/Neon send a named statement the server parses and
 * plans once per connection.
 */
export function prepared<T>(db: Db, name: string, build: (db: Db) => T): T {
  let queries = byDatabase.get(db);
  if (!queries) byDatabase.set(db, (queries = new Map()));
  let query = queries.get(name) as T | undefined;
  if (query === undefined) queries.set(name, (query = build(db)));
  return query;
}

export interface PreparedSql {
  /** Runs the statement with these placeholder values; answers the driver's rows (column names as in the database). */
  execute(values: Record<string, unknown>): Promise<Record<string, unknown>[]>;
}

/**
 * `prepared` for a statement the query builder cannot express (a union, data-modifying CTEs),
 * the kind `db.execute` runs: `build` returns its SQL with `sql.placeholder`s where the values
 * go, turned into text once per database handle. Building a large statement costs more CPU than
 * sending it, so a hot route's statement of a given shape should be built this way; each shape
 * needs its own name.
 */
export function preparedSql(db: Db, name: string, build: () => SQL): PreparedSql {
  return prepared(db, name, (d) => {
    // The handle's own dialect, so the text is what `db.execute` would have sent.
    const { dialect } = d as unknown as { dialect: PgDialect };
    const query = d._.session.prepareQuery(dialect.sqlToQuery(build()), undefined, name, false);
    return { execute: async (values) => rowsOf(await query.execute(values)) };
  });
}
