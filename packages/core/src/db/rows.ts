import { getTableColumns, type Table } from "drizzle-orm";

/**
 * Maps a raw row (column names as in the database, values as the driver returns them) to the
 * table's typed shape, as drizzle's query builder would.
 */
export function mapRow<T extends Table>(table: T, row: Record<string, unknown>): T["$inferSelect"] {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = row[column.name];
    out[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return out as T["$inferSelect"];
}
