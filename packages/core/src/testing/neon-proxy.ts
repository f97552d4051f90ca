import { createServer, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { neonSqlHandler, pipeToPostgres } from "./neon-http-endpoint";

/**
 * The only PostgreSQL servers the proxy connects to. Anything else is refused before a TCP
 * connection is made, so the proxy cannot be used to reach other hosts or ports.
 */
const allowedTargets: ReadonlyMap<string, { host: string; port: number }> = new Map([
  ["127.0.0.1:5432", { host: "127.0.0.1", port: 5432 }],
  ["localhost:5432", { host: "127.0.0.1", port: 5432 }],
]);

export const NEON_PROXY_PATH = "/v1";

export interface NeonProxy {
  port: number;
  /** The value for `openDatabase(url, { neonWsProxy })`: `127.0.0.1:<port>/v1`. */
  wsProxy: string;
  /** Targets the proxy refused since it started (`address` as requested). */
  refused: string[];
  /** WebSocket connections the proxy accepted (each one a PostgreSQL connection). */
  readonly connections: number;
  close(): Promise<void>;
}

/** The PostgreSQL target of an upgrade request, or undefined when it is not allowed. */
export function proxyTarget(requestUrl: string | undefined): { host: string; port: number } | undefined {
  if (!requestUrl) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(requestUrl, "http://proxy.invalid");
  } catch {
    return undefined;
  }
  if (parsed.pathname !== NEON_PROXY_PATH) return undefined;
  const addresses = parsed.searchParams.getAll("address");
  if (addresses.length !== 1) return undefined;
  return allowedTargets.get(addresses[0]?.toLowerCase() ?? "");
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * A WebSocket-to-TCP proxy for the Neon serverless driver in tests: each WebSocket carries one
 * PostgreSQL connection as binary frames (what Neon's own proxy does). It listens on 127.0.0.1
 * only and connects only to the local PostgreSQL server on port 5432.
 */
export async function startNeonProxy(options: { port?: number } = {}): Promise<NeonProxy> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  // Neon's HTTP endpoint too, for statements the driver sends outside transactions.
  const sql = neonSqlHandler({ target: (host, port) => allowedTargets.get(`${host}:${port || "5432"}`) });
  const server = createServer((request, response) => {
    if (request.url === "/sql") return sql(request, response);
    response.writeHead(426, { connection: "close" }).end();
  });
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = proxyTarget(request.url);
    if (!target) {
      refused.push(new URL(request.url ?? "/", "http://proxy.invalid").searchParams.get("address") ?? "");
      refuse(socket, 403, "Forbidden");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      connections++;
      pipeToPostgres(ws, target, sockets);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    port,
    wsProxy: `127.0.0.1:${port}${NEON_PROXY_PATH}`,
    refused,
    get connections() {
      return connections;
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
