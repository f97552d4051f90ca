import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import pg from "pg";
import { type WebSocket, WebSocketServer } from "ws";

/**
 * Neon's HTTP SQL protocol, served from this machine and backed by a PostgreSQL server, for
 * tests, benchmarks and the stage twin. A request is `POST /sql` with the connection string in
 * `Neon-Connection-String` and `{query, params}` (or `{queries: [...]}`, run in one transaction)
 * as its body; the answer carries every value as PostgreSQL's text (`Neon-Raw-Text-Output`) and
 * every row as an array (`Neon-Array-Mode`), which is how the Neon driver asks. A failing
 * statement is a 400 whose body has the server's error fields.
 */

/** The PostgreSQL server a connection string's `host:port` stands for, or undefined to refuse it. */
export type SqlTarget = (host: string, port: string) => { host: string; port: number } | undefined;

/** Local servers on PostgreSQL's port only: the endpoint cannot be used to reach anything else. */
export const localSqlTarget: SqlTarget = (host, port) =>
  (host === "127.0.0.1" || host === "localhost") && (port === "" || port === "5432") ? { host: "127.0.0.1", port: 5432 } : undefined;

export interface NeonSqlHandler {
  (request: IncomingMessage, response: ServerResponse): void;
  /** HTTP requests answered (each one network round trip) and statements run since the start. */
  readonly stats: { requests: number; statements: number };
  /** The latest statements served (at most 100), oldest first. */
  readonly recent: Statement[];
  close(): Promise<void>;
}

export interface Statement {
  query: string;
  params?: unknown[];
}

const errorFields = [
  "severity",
  "code",
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
] as const;

// Every value stays PostgreSQL's text: the client parses by type, as it does with Neon.
const rawTypes = { getTypeParser: () => (value: string) => value };

function resultOf(result: pg.QueryResult<unknown[]>) {
  return {
    command: result.command,
    rowCount: result.rowCount,
    rows: result.rows ?? [],
    fields: (result.fields ?? []).map((f) => ({
      name: f.name,
      tableID: f.tableID,
      columnID: f.columnID,
      dataTypeID: f.dataTypeID,
      dataTypeSize: f.dataTypeSize,
      dataTypeModifier: f.dataTypeModifier,
      format: "text",
    })),
    rowAsArray: true,
  };
}

function run(client: pg.Pool | pg.PoolClient, statement: Statement) {
  return client.query({ text: statement.query, values: (statement.params ?? []) as unknown[], rowMode: "array", types: rawTypes });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

/** A request handler for `POST /sql`, to mount on any HTTP server. */
export function neonSqlHandler(options: { target: SqlTarget }): NeonSqlHandler {
  const pools = new Map<string, pg.Pool>();
  const stats = { requests: 0, statements: 0 };
  const recent: Statement[] = [];
  const record = (statement: Statement) => {
    stats.statements++;
    recent.push({ query: statement.query, params: statement.params ?? [] });
    if (recent.length > 100) recent.shift();
  };

  const poolFor = (connectionString: string): pg.Pool | undefined => {
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      return undefined;
    }
    const target = options.target(url.hostname.toLowerCase(), url.port);
    if (!target) return undefined;
    const key = `${target.host}:${target.port}/${url.username}/${url.pathname}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = new pg.Pool({
        host: target.host,
        port: target.port,
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        database: decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username),
        max: 10,
      });
      pool.on("error", () => {});
      pools.set(key, pool);
    }
    return pool;
  };

  const answer = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    stats.requests++;
    const pool = poolFor(String(request.headers["neon-connection-string"] ?? ""));
    if (!pool) return send(response, 403, { message: "connection string refused: not a database this endpoint serves" });
    let body: Statement & { queries?: Statement[] };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(response, 400, { message: "malformed JSON body" });
    }
    try {
      if (!Array.isArray(body.queries)) {
        record(body);
        return send(response, 200, resultOf(await run(pool, body)));
      }
      const client = await pool.connect();
      try {
        const isolation = request.headers["neon-batch-isolation-level"];
        await client.query(`begin${typeof isolation === "string" && /^[A-Za-z ]+$/.test(isolation) ? ` isolation level ${isolation}` : ""}`);
        const results = [];
        for (const statement of body.queries) {
          record(statement);
          results.push(resultOf(await run(client, statement)));
        }
        await client.query("commit");
        send(response, 200, { results });
      } catch (error) {
        await client.query("rollback").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    } catch (error) {
      const fields = error as Record<string, unknown>;
      const out: Record<string, unknown> = { message: (error as Error).message };
      for (const field of errorFields) if (fields[field] !== undefined) out[field] = fields[field];
      send(response, typeof fields.code === "string" && fields.code.length === 5 ? 400 : 500, out);
    }
  };

  const handler = ((request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== "POST") {
      response.writeHead(405, { allow: "POST", connection: "close" }).end();
      return;
    }
    answer(request, response).catch(() => {
      if (!response.headersSent) send(response, 500, { message: "internal error" });
    });
  }) as NeonSqlHandler;
  Object.defineProperty(handler, "stats", { value: stats });
  Object.defineProperty(handler, "recent", { value: recent });
  handler.close = async () => {
    await Promise.all([...pools.values()].map((pool) => pool.end()));
    pools.clear();
  };
  return handler;
}

/**
 * Carries one PostgreSQL connection over a WebSocket, as Neon's proxy does: binary frames to and
 * from a TCP connection to `to`, each side closed with the other. The hooks see each message.
 */
export function pipeToPostgres(
  ws: WebSocket,
  to: { host: string; port: number },
  sockets: Set<Socket>,
  hooks: { fromClient?: () => void; fromServer?: () => void } = {},
): void {
  const tcp = connect(to);
  sockets.add(tcp);
  tcp.setNoDelay(true);
  const pending: Buffer[] = [];
  tcp.on("connect", () => {
    for (const chunk of pending.splice(0)) tcp.write(chunk);
  });
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    hooks.fromClient?.();
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (tcp.connecting) pending.push(chunk);
    else tcp.write(chunk);
  });
  tcp.on("data", (chunk) => {
    hooks.fromServer?.();
    if (ws.readyState === ws.OPEN) ws.send(chunk, { binary: true });
  });
  const closeBoth = () => {
    sockets.delete(tcp);
    tcp.destroy();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
  };
  tcp.on("close", closeBoth);
  tcp.on("error", closeBoth);
  ws.on("close", closeBoth);
  ws.on("error", closeBoth);
}

export interface NeonLocalEndpoint {
  port: number;
  /** For `openDatabase(url, { neonWsProxy })`: the driver derives `http://<this>/sql` from it. */
  wsProxy: string;
  /** Round trips a client waited for: one per HTTP request, one per WebSocket request flight. */
  readonly roundTrips: number;
  readonly http: { requests: number; statements: number };
  /** The latest statements served over HTTP. */
  readonly recent: Statement[];
  /** WebSocket connections (each one PostgreSQL connection). */
  readonly connections: number;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Both of Neon's front doors on one local port, backed by the local PostgreSQL server: `/sql`
 * (HTTP) and `/v1` (WebSocket carrying the PostgreSQL protocol). It counts round trips: for a
 * WebSocket, every turn from the server answering to the client sending again is one.
 */
export async function startNeonLocalEndpoint(options: { target?: SqlTarget } = {}): Promise<NeonLocalEndpoint> {
  const target = options.target ?? localSqlTarget;
  const sql = neonSqlHandler({ target });
  const server = createServer((request, response) => {
    if (new URL(request.url ?? "/", "http://endpoint.invalid").pathname === "/sql") return sql(request, response);
    response.writeHead(404, { connection: "close" }).end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets = new Set<Socket>();
  let wsFlights = 0;
  let connections = 0;
  let httpBase = 0;

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const address = new URL(request.url ?? "/", "http://endpoint.invalid").searchParams.get("address") ?? "";
    const [host = "", port = ""] = address.split(":");
    const to = target(host.toLowerCase(), port);
    if (!to) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      connections++;
      // Each turn from the server answering to the client sending again is one round trip.
      let clientTurn = false;
      pipeToPostgres(ws, to, sockets, {
        fromClient: () => {
          if (!clientTurn) wsFlights++;
          clientTurn = true;
        },
        fromServer: () => {
          clientTurn = false;
        },
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    wsProxy: `127.0.0.1:${port}/v1`,
    get roundTrips() {
      return sql.stats.requests - httpBase + wsFlights;
    },
    get http() {
      return sql.stats;
    },
    get recent() {
      return sql.recent;
    },
    get connections() {
      return connections;
    },
    reset() {
      httpBase = sql.stats.requests;
      wsFlights = 0;
      sql.recent.length = 0;
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sql.close();
    },
  };
}
