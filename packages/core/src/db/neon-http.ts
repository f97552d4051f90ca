import type * as Http from "node:http";
import type * as Https from "node:https";
import type { Logger } from "drizzle-orm/logger";
import { NeonHttpSession } from "drizzle-orm/neon-http/session";
import { PgDatabase } from "drizzle-orm/pg-core/db";
import { PgDialect } from "drizzle-orm/pg-core/dialect";
import type { Db } from "./index";

/**
 * A client for Neon's HTTP SQL endpoint: one HTTPS request per statement, on a kept-alive
 * connection, with no WebSocket and no PostgreSQL start-up or authentication exchange. It speaks
 * the protocol the Neon driver's `neon()` speaks (and the local endpoint in testing/ serves), but
 * over node:https rather than the driver's `fetch`: a cold process then loads neither the driver
 * (about 150 KB) nor Node's fetch implementation. It has no interactive transactions; neon.ts
 * sends those over the WebSocket driver.
 */

export interface NeonHttpOptions {
  /** The endpoint URL; Neon's own (`https://api.<region>.../sql`) unless set. */
  endpoint?: string;
  /** How long a request may wait with nothing received before it fails with code ETIMEDOUT. */
  timeoutMs?: number;
}

export interface NeonHttpResult {
  command: string;
  rowCount: number | null;
  fields: { name: string; dataTypeID: number }[];
  rows: unknown[];
}

/** The endpoint Neon serves a compute's SQL over HTTP at: `ep-x.<region>.aws.neon.tech` → `https://api.<region>.aws.neon.tech/sql`. */
export function neonHttpEndpoint(connectionString: string): string {
  const host = new URL(connectionString).hostname;
  return `https://${host.replace(/^[^.]+\./, "api.")}/sql`;
}

// Values arrive as PostgreSQL's text. Parsed as the other drivers parse them for drizzle: times and
// dates stay text (drizzle maps them), int8 and numeric stay text (exact), json is parsed.
const parseInteger = (value: string) => Number.parseInt(value, 10);
const parseJson = (value: string) => JSON.parse(value) as unknown;
const parseBool = (value: string) => value === "t";
const parseBytea = (value: string) => Buffer.from(value.slice(2), "hex");
const scalarParsers: Record<number, (value: string) => unknown> = {
  16: parseBool,
  17: parseBytea,
  21: parseInteger,
  23: parseInteger,
  26: parseInteger,
  700: Number.parseFloat,
  701: Number.parseFloat,
  114: parseJson,
  3802: parseJson,
};
/** Array types whose elements are parsed (the rest stay text arrays, or text where drizzle wants text). */
const arrayElements: Record<number, ((value: string) => unknown) | undefined> = {
  1000: parseBool,
  1005: parseInteger,
  1007: parseInteger,
  1021: Number.parseFloat,
  1022: Number.parseFloat,
  199: parseJson,
  3807: parseJson,
  1009: undefined,
  1015: undefined,
  2951: undefined,
  1016: undefined,
  1231: undefined,
};
// Timestamp, date and interval arrays drizzle maps itself from the text.
const textArrays = new Set([1115, 1182, 1185, 1187]);

/** A one-dimensional PostgreSQL array literal (`{a,"b c",NULL}`) into its elements. */
export function parseArray(text: string, element: (value: string) => unknown = (v) => v): unknown[] {
  const out: unknown[] = [];
  if (text.length < 2 || text === "{}") return out;
  let i = 1;
  while (i < text.length - 1) {
    if (text[i] === '"') {
      let value = "";
      i++;
      while (text[i] !== '"') {
        if (text[i] === "\\") i++;
        value += text[i];
        i++;
      }
      out.push(element(value));
      i += 2;
    } else {
      let end = text.indexOf(",", i);
      if (end === -1 || end > text.length - 1) end = text.length - 1;
      const value = text.slice(i, end);
      out.push(value === "NULL" ? null : element(value));
      i = end + 1;
    }
  }
  return out;
}

function parserFor(typeId: number): ((value: string) => unknown) | undefined {
  const scalar = scalarParsers[typeId];
  if (scalar) return scalar;
  if (typeId in arrayElements) {
    const element = arrayElements[typeId];
    return (value) => parseArray(value, element);
  }
  if (textArrays.has(typeId)) return (value) => parseArray(value);
  return undefined;
}

/** A parameter as the endpoint takes it: text, or null. */
function serialize(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  if (Array.isArray(value)) return `{${value.map(arrayElement).join(",")}}`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
function arrayElement(value: unknown): string {
  const text = serialize(value);
  if (text === null) return "NULL";
  if (Array.isArray(value)) return text;
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** An error the endpoint reported: the server's fields (`code`, `constraint`, …) on an Error, as the drivers report them. */
export class NeonHttpError extends Error {
  code?: string;
  constructor(message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = "NeonHttpError";
    Object.assign(this, fields);
  }
}

export interface NeonHttpClient {
  (sql: string, params?: unknown[], options?: { arrayMode?: boolean; fullResults?: boolean }): Promise<NeonHttpResult | unknown[]>;
  /** Statements run in one transaction on the server (one request). */
  transaction(queries: { query: string; params: unknown[] }[]): Promise<NeonHttpResult[]>;
  close(): void;
}

/** A Neon HTTP client for a connection string. */
export function neonHttpClient(connectionString: string, options: NeonHttpOptions = {}): NeonHttpClient {
  const endpoint = new URL(options.endpoint ?? neonHttpEndpoint(connectionString));
  const secure = endpoint.protocol === "https:";
  // Not `import … from "node:http"`: an ESM import of node:http builds its namespace, whose lazy
  // WebSocket getters load Node's fetch implementation (undici), tens of milliseconds of a cold start.
  const transport = secure ? (process.getBuiltinModule("node:https") as typeof Https) : (process.getBuiltinModule("node:http") as typeof Http);
  // One connection is enough for a Lambda (one request at a time); more for a shared local process.
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 16 });
  const headers = {
    "content-type": "application/json",
    "neon-connection-string": connectionString,
    "neon-raw-text-output": "true",
    "neon-array-mode": "true",
  };

  const post = (body: string, retried = false): Promise<unknown> =>
    new Promise<unknown>((resolve, reject) => {
      const request = transport.request(endpoint, { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body) } }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = response.statusCode ?? 0;
          let parsed: Record<string, unknown> | undefined;
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            parsed = undefined;
          }
          if (status === 200 && parsed) return resolve(parsed);
          if (status === 400 && parsed) return reject(new NeonHttpError(String(parsed.message ?? "query failed"), parsed));
          reject(new NeonHttpError(`Server error (HTTP status ${status}): ${text.slice(0, 200)}`));
        });
      });
      // The socket is destroyed, so a late answer cannot reach the next request sent on it.
      if (options.timeoutMs)
        request.setTimeout(options.timeoutMs, () =>
          request.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: "ETIMEDOUT" })),
        );
      request.on("error", (error: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed while this process was idle (a Lambda between
        // invocations) fails before the server saw the request: send it once more on a new one.
        if (!retried && request.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE")) {
          post(body, true).then(resolve, reject);
          return;
        }
        const wrapped = new NeonHttpError(`Error connecting to database: ${error.message}`, error.code ? { code: error.code } : {});
        wrapped.cause = error;
        reject(wrapped);
      });
      request.end(body);
    });

  const shape = (result: NeonHttpResult, arrayMode: boolean, fullResults: boolean) => {
    const parsers = result.fields.map((field) => parserFor(field.dataTypeID));
    const names = result.fields.map((field) => field.name);
    const rows = (result.rows as (string | null)[][]).map((row) => {
      const parse = (value: string | null, i: number) => {
        const parser = parsers[i];
        return value === null ? null : parser ? parser(value) : value;
      };
      if (arrayMode) return row.map(parse);
      const object: Record<string, unknown> = {};
      for (let i = 0; i < row.length; i++) object[names[i] as string] = parse(row[i] as string | null, i);
      return object;
    });
    return fullResults ? { ...result, rows } : rows;
  };

  const client = (async (sql, params = [], queryOptions = {}) => {
    const result = (await post(JSON.stringify({ query: sql, params: params.map(serialize) }))) as NeonHttpResult;
    return shape(result, queryOptions.arrayMode ?? false, queryOptions.fullResults ?? false);
  }) as NeonHttpClient;
  client.transaction = async (queries) => {
    const answer = (await post(JSON.stringify({ queries: queries.map((q) => ({ query: q.query, params: q.params.map(serialize) })) }))) as {
      results: NeonHttpResult[];
    };
    return answer.results.map((result) => shape(result, true, true) as NeonHttpResult);
  };
  client.close = () => agent.destroy();
  return client;
}

/** drizzle over the HTTP client: every statement is one request; `transaction()` throws (neon.ts routes it elsewhere). */
export function drizzleNeonHttp(client: NeonHttpClient, logger: Logger): Db {
  const dialect = new PgDialect();
  // drizzle's session calls `client(sql, params, { arrayMode, fullResults })`, the driver's `neon()` signature.
  const session = new NeonHttpSession(client as never, dialect, undefined, { logger });
  return new PgDatabase(dialect, session as never, undefined) as unknown as Db;
}
