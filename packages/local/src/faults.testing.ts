/**
 * What the fault tests share: the local runtime as `npm run dev` runs it, in a process of its own
 * that can be killed; a TCP proxy between a runtime and PostgreSQL that can be cut; plain HTTP
 * calls that tell an answer from no answer; and the services' databases opened for counting.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { join } from "node:path";
import { type Database, openDatabase, rowsOf } from "@enclave/core";
import { sql } from "drizzle-orm";
import { repositoryRoot } from "./runtime";

export const serviceNames = ["auth", "profile", "payments", "admin"] as const;

export interface DevProcess {
  base: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exited: Promise<number | null>;
  output(): string;
}

/** `npm run dev` (the CLI's dev command) in its own process; resolves once it prints its address. */
export function startDev(env: Record<string, string>): Promise<DevProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "packages/local/src/cli.ts", "dev"], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "error", ...env },
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const port = /auth\s+http:\/\/127\.0\.0\.1:(\d+)\/auth/.exec(output)?.[1];
      if (port) {
        child.stdout?.off("data", onData);
        child.stdout?.on("data", (more: Buffer) => (output += more));
        resolve({ base: `http://127.0.0.1:${port}`, child, exited, output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk));
    void exited.then((code) => reject(new Error(`npm run dev exited (${code}) before it was ready:\n${output}`)));
  });
}

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in assertions
  body: any;
}

/** One HTTP call; undefined when no answer came (connection refused or reset). */
export async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer | undefined> {
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  } catch {
    return undefined;
  }
}

/** Deliveries the local bus has on disk, waiting (what a restart delivers). */
export function pendingDeliveries(stageDir: string): string[] {
  try {
    return readdirSync(join(stageDir, "bus", "pending")).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
}

/** Each service's database, for counting: the PGlite directories under DATA_DIR, or one server URL. */
export async function openServiceDatabases(where: { stageDir: string } | { url: string }): Promise<{ of(service: string): Database; close(): Promise<void> }> {
  const opened = new Map<string, Database>();
  if ("url" in where) {
    const shared = await openDatabase(where.url, { maxConnections: 2 });
    for (const service of serviceNames) opened.set(service, shared);
  } else {
    for (const service of serviceNames) opened.set(service, await openDatabase(`pglite://${join(where.stageDir, service)}`));
  }
  return {
    of: (service) => opened.get(service) as Database,
    close: async () => {
      await Promise.all([...new Set(opened.values())].map((database) => database.close()));
    },
  };
}

export async function rows<T = Record<string, unknown>>(database: Database, query: string): Promise<T[]> {
  return rowsOf<T>(await database.db.execute(sql.raw(query)));
}

/**
 * A TCP proxy in front of PostgreSQL that the test controls: `cut()` resets every open connection
 * and refuses new ones (the database has gone away); `restore()` accepts again on the same port.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  connections = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<this> {
    const server = createServer((client) => {
      this.connections++;
      const upstream = new Socket();
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {});
      }
      upstream.connect(this.target.port, this.target.host);
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.resetAndDestroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.start();
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
