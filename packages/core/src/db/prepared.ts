import type { Db } from "./index";

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
