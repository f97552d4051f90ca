import { randomBytes, randomUUID } from "node:crypto";

/**
 * A statement a route sent, recorded at the driver, to be sent again: the same text, the same
 * values, except those that differed between two recordings of the route (new ids, keys, token
 * hashes), which get a fresh value of the same kind each time.
 */
export interface RecordedStatement {
  text: string;
  values: unknown[];
  name?: string;
  /** Indexes of values that are new on every request. */
  fresh: number[];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const token = /^[A-Za-z0-9_-]+$/;

function freshLike(value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (uuid.test(value)) return randomUUID();
  if (token.test(value))
    return randomBytes(Math.ceil(value.length * 0.75) + 1)
      .toString("base64url")
      .slice(0, value.length);
  // Times, JSON documents: a repeat is harmless.
  return value;
}

/** Two recordings of the same route → what to replay. */
export function replayable(first: Omit<RecordedStatement, "fresh">[], second: Omit<RecordedStatement, "fresh">[]): RecordedStatement[] {
  return second.map((statement, i) => {
    const before = first[i];
    const fresh: number[] = [];
    statement.values.forEach((value, k) => {
      if (!before || JSON.stringify(before.values[k]) !== JSON.stringify(value)) fresh.push(k);
    });
    return { ...statement, fresh };
  });
}

/** A query config for node-postgres: the recorded statement with fresh values where needed. */
export function replay(statement: RecordedStatement): { text: string; values: unknown[]; name?: string } {
  const values = statement.fresh.length === 0 ? statement.values : statement.values.map((v, k) => (statement.fresh.includes(k) ? freshLike(v) : v));
  return { text: statement.text, values, ...(statement.name ? { name: statement.name } : {}) };
}
