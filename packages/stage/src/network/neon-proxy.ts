import { createServer, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { neonSqlHandler } from "@enclave/core/testing/neon-http-endpoint";
import { type WebSocket, WebSocketServer } from "ws";
import { cleartextPasswordMessage, md5PasswordMessage, ScramSha256 } from "./postgres-auth";

export interface NeonProxyOptions {
  /** The PostgreSQL server every Neon endpoint stands for, e.g. `{ host: "127.0.0.1", port: 5432 }`. */
  target: { host: string; port: number };
  /** Port to listen on (127.0.0.1 only); a free one unless set. */
  port?: number;
}

export interface NeonProxy {
  port: number;
  /** WebSocket connections accepted since the start (each one a PostgreSQL connection). */
  readonly connections: number;
  /** `address` values refused since the start. */
  refused: string[];
  close(): Promise<void>;
}

/** Neon endpoint hosts: `ep-...[-pooler].<region>.aws.neon.tech`, on PostgreSQL's port. */
const NEON_ADDRESS = /^((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+neon\.tech):5432$/i;
const PATHS = new Set(["/v1", "/v2"]);

/** The endpoint host of an upgrade request (`/v2?address=<host>:5432`), or undefined when it is not a Neon endpoint. */
export function neonEndpoint(requestUrl: string | undefined): string | undefined {
  if (!requestUrl?.startsWith("/")) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(requestUrl, "http://proxy.invalid");
  } catch {
    return undefined;
  }
  const addresses = parsed.searchParams.getAll("address");
  if (!PATHS.has(parsed.pathname) || addresses.length !== 1) return undefined;
  return NEON_ADDRESS.exec(addresses[0] ?? "")?.[1]?.toLowerCase();
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const AUTH_OK = 0;
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;
const AUTH_SASL_CONTINUE = 11;
const AUTH_SASL_FINAL = 12;

/** An ErrorResponse, as a server (or Neon's proxy) sends it before closing. */
function errorResponse(code: string, text: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${text}\0\0`, "utf8");
  const head = Buffer.alloc(5);
  head.write("E", 0, "latin1");
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

function startupParameters(packet: Buffer): Map<string, string> {
  const parts = packet.toString("utf8", 8).split("\0");
  const parameters = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) parameters.set(parts[i]!, parts[i + 1]!);
  return parameters;
}

/** A whole typed message at the start of `buffer` (type byte, length, body), if it has arrived. */
function typedMessage(buffer: Buffer): { type: string; body: Buffer; size: number } | undefined {
  if (buffer.length < 5) return undefined;
  const size = 1 + buffer.readInt32BE(1);
  if (buffer.length < size) return undefined;
  return { type: String.fromCharCode(buffer[0]!), body: buffer.subarray(5, size), size };
}

/**
 * One PostgreSQL connection carried over a WebSocket. The Neon driver pipelines its
 * StartupMessage and a cleartext PasswordMessage without waiting for the server; Neon's proxy
 * holds that password and answers whatever the server asks for itself. So does this: the password
 * is held until the server's first authentication request, then sent in clear, hashed with md5 or
 * used for SCRAM-SHA-256, or dropped when the server trusts the connection. A client that waits
 * for the server's request instead gets it, and the connection is a plain pipe from then on.
 */
class Session {
  private phase: "startup" | "first" | "rest" = "startup";
  /** Who answers the server's authentication: not known yet, this proxy, the client, or nobody any more. */
  private auth: "pending" | "proxy" | "client" | "done" = "pending";
  private fromClient: Buffer = Buffer.alloc(0);
  private fromServer: Buffer = Buffer.alloc(0);
  /** Client bytes that wait for the end of authentication (pipelined queries). */
  private held: Buffer[] = [];
  private password: string | undefined;
  private user = "";
  private scram: ScramSha256 | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly tcp: Socket,
  ) {}

  client(chunk: Buffer): void {
    if (this.phase === "rest" && (this.auth === "client" || this.auth === "done")) {
      this.tcp.write(chunk);
      return;
    }
    this.fromClient = this.fromClient.length ? Buffer.concat([this.fromClient, chunk]) : chunk;
    while (this.fromClient.length > 0) {
      if (this.phase === "startup") {
        if (!this.startup()) return;
      } else if (this.phase === "first") {
        if (!this.firstMessage()) return;
      } else {
        this.toServerOrHold(this.fromClient);
        this.fromClient = Buffer.alloc(0);
      }
    }
  }

  /** StartupMessage (or an SSL/GSS request, or a CancelRequest) at the start of the client's bytes. */
  private startup(): boolean {
    if (this.fromClient.length < 8) return false;
    const size = this.fromClient.readInt32BE(0);
    if (size < 8 || size > 10_000) {
      this.fail("08P01", "invalid startup packet");
      return false;
    }
    if (this.fromClient.length < size) return false;
    const packet = this.fromClient.subarray(0, size);
    this.fromClient = this.fromClient.subarray(size);
    const code = packet.readInt32BE(4);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      // The WebSocket is the encrypted channel; PostgreSQL's own TLS is not offered inside it.
      this.ws.send(Buffer.from("N"), { binary: true });
      return true;
    }
    this.tcp.write(packet);
    if (code === CANCEL_REQUEST) {
      this.phase = "rest";
      this.auth = "done";
      return true;
    }
    this.user = startupParameters(packet).get("user") ?? "";
    this.phase = "first";
    return true;
  }

  /** The client's first message after startup: its pipelined password, or the start of what waits for authentication. */
  private firstMessage(): boolean {
    if (this.auth === "client") {
      this.phase = "rest";
      return true;
    }
    const first = typedMessage(this.fromClient);
    if (!first) return false;
    const raw = this.fromClient.subarray(0, first.size);
    this.fromClient = this.fromClient.subarray(first.size);
    this.phase = "rest";
    if (first.type === "p") {
      const text = first.body.toString("utf8");
      // After a trusting server's AuthenticationOk the password has no use: drop it.
      if (this.auth !== "done") this.password = text.endsWith("\0") ? text.slice(0, -1) : text;
    } else {
      this.toServerOrHold(raw);
    }
    return true;
  }

  private toServerOrHold(chunk: Buffer): void {
    if (this.auth === "client" || this.auth === "done") this.tcp.write(chunk);
    else this.held.push(Buffer.from(chunk));
  }

  server(chunk: Buffer): void {
    if (this.auth === "client" || this.auth === "done") {
      this.toClient(chunk);
      return;
    }
    this.fromServer = this.fromServer.length ? Buffer.concat([this.fromServer, chunk]) : chunk;
    for (;;) {
      const next = typedMessage(this.fromServer);
      if (!next) return;
      const raw = this.fromServer.subarray(0, next.size);
      this.fromServer = this.fromServer.subarray(next.size);
      if (next.type !== "R" || next.body.length < 4) {
        // ErrorResponse (a wrong password, an unknown database), NoticeResponse, NegotiateProtocolVersion.
        this.toClient(raw);
        if (next.type === "E") {
          // The server refused the connection and closes it: what the client pipelined has nowhere to go.
          this.held = [];
          this.passThrough();
          return;
        }
        continue;
      }
      if (!this.authenticate(next.body, raw)) return;
    }
  }

  /** Handles one Authentication* request; false once the connection no longer needs this proxy's attention. */
  private authenticate(body: Buffer, raw: Buffer): boolean {
    const kind = body.readInt32BE(0);
    const password = this.password;
    try {
      if (kind === AUTH_OK) {
        this.toClient(raw);
        this.password = undefined;
        this.passThrough();
        return false;
      }
      if (this.auth === "proxy" && kind === AUTH_SASL_CONTINUE && this.scram) {
        this.tcp.write(this.scram.continue(body.toString("utf8", 4)));
        return true;
      }
      if (this.auth === "proxy" && kind === AUTH_SASL_FINAL && this.scram) {
        this.scram.verifyFinal(body.toString("utf8", 4));
        return true;
      }
      if (this.auth === "pending" && password !== undefined) {
        if (kind === AUTH_CLEARTEXT) {
          this.auth = "proxy";
          this.tcp.write(cleartextPasswordMessage(password));
          return true;
        }
        if (kind === AUTH_MD5) {
          this.auth = "proxy";
          this.tcp.write(md5PasswordMessage(this.user, password, body.subarray(4, 8)));
          return true;
        }
        if (kind === AUTH_SASL && body.toString("utf8", 4).split("\0").includes(ScramSha256.mechanism)) {
          this.auth = "proxy";
          this.scram = new ScramSha256(password);
          this.tcp.write(this.scram.initialResponse());
          return true;
        }
      }
    } catch (error) {
      this.fail("28000", (error as Error).message);
      return false;
    }
    // No password was pipelined (or the method needs the client): the client authenticates itself.
    this.auth = "client";
    this.toClient(raw);
    this.passThrough();
    return false;
  }

  /** From here on bytes flow unchanged both ways. */
  private passThrough(): void {
    if (this.auth !== "client") this.auth = "done";
    for (const chunk of this.held.splice(0)) this.tcp.write(chunk);
    if (this.fromServer.length > 0) this.toClient(this.fromServer);
    this.fromServer = Buffer.alloc(0);
    if (this.phase === "rest" && this.fromClient.length > 0) {
      this.tcp.write(this.fromClient);
      this.fromClient = Buffer.alloc(0);
    }
  }

  private toClient(chunk: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(chunk, { binary: true });
  }

  fail(code: string, text: string): void {
    this.toClient(errorResponse(code, text));
    this.ws.close();
    this.tcp.destroy();
  }
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * A stand-in for Neon's WebSocket proxy on this machine: it accepts connections for `*.neon.tech`
 * endpoints only, and carries every one of them to the one configured PostgreSQL server, so it
 * cannot be used to reach anything else. It listens on 127.0.0.1.
 */
export async function startNeonProxy(options: NeonProxyOptions): Promise<NeonProxy> {
  const { target } = options;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  // Neon's HTTP SQL endpoint (`POST /sql`), for the same endpoints, to the same server.
  const sql = neonSqlHandler({ target: (host) => (NEON_ADDRESS.test(`${host}:5432`) ? target : undefined) });
  const server = createServer((request, response) => {
    if (request.url === "/sql") return sql(request, response);
    response.writeHead(426, { connection: "close" }).end();
  });
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!neonEndpoint(request.url)) {
      refused.push(new URL(request.url ?? "/", "http://proxy.invalid").searchParams.get("address") ?? "");
      refuse(socket, 403, "Forbidden");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      connections++;
      const tcp = connect({ host: target.host, port: target.port });
      sockets.add(tcp);
      tcp.setNoDelay(true);
      const session = new Session(ws, tcp);
      ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
        session.client(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
      });
      tcp.on("data", (chunk: Buffer) => session.server(chunk));
      tcp.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "ECONNREFUSED") session.fail("08006", `could not connect to the database at ${target.host}:${target.port}`);
      });
      const closeBoth = () => {
        sockets.delete(tcp);
        tcp.destroy();
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
      };
      tcp.on("close", closeBoth);
      ws.on("close", closeBoth);
      ws.on("error", closeBoth);
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
