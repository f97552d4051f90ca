import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../db/index";
import { migrate } from "../db/migrate";
import { createTestDatabase, migrationsDir, testServerUrl } from "./database";

/**
 * What a Lambda entry point needs around it in a test: its database behind a URL, an EventBridge
 * endpoint for its PutEvents calls, and the environment it reads its configuration from.
 */

/** One PutEvents entry as the SDK sends it. */
export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  Detail: string;
  EventBusName: string;
}

/** One PutEvents call: the `x-amz-target` header and the request body. */
export interface PutEventsRequest {
  target: string;
  body: { Entries: PutEventsEntry[] };
}

export interface PutEventsEndpoint {
  /** Every call, in order. */
  requests: PutEventsRequest[];
  /** Every entry of every call, in order. */
  entries: PutEventsEntry[];
  /** Starts listening on a free local port; resolves to the URL for EVENT_BUS_ENDPOINT. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** A local EventBridge endpoint that accepts every PutEvents entry and records it. */
export function putEventsEndpoint(): PutEventsEndpoint {
  const requests: PutEventsRequest[] = [];
  const entries: PutEventsEntry[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const body = JSON.parse(text) as PutEventsRequest["body"];
      requests.push({ target: String(req.headers["x-amz-target"]), body });
      entries.push(...body.Entries);
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify({ FailedEntryCount: 0, Entries: body.Entries.map((_, i) => ({ EventId: `event-${i}` })) }));
    });
  });
  return {
    requests,
    entries,
    async listen() {
      await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () => new Promise<void>((done) => (server.listening ? server.close(() => done()) : done())),
  };
}

export interface FunctionDatabase {
  /** For `<SERVICE>_DATABASE_URL`: the function opens the database itself, as in the cloud. */
  url: string;
  /** Removes the database (the server database, or the PGlite data directory). */
  dispose(): Promise<void>;
}

/**
 * A migrated database of `service` that a function opens by URL: a new database on the server at
 * TEST_DATABASE_URL, or else a PGlite data directory, migrated and closed (in-memory PGlite
 * belongs to one instance, so the function could not open that).
 */
export async function functionDatabase(service: string): Promise<FunctionDatabase> {
  if (testServerUrl) {
    const database = await createTestDatabase([service]);
    return { url: database.url, dispose: () => database.dispose() };
  }
  const dataDir = await mkdtemp(join(tmpdir(), `enclave-${service}-lambda-`));
  const url = `pglite://${dataDir}`;
  const migrating = await openDatabase(url);
  await migrate(migrating.db, service, migrationsDir(service));
  await migrating.close();
  return { url, dispose: () => rm(dataDir, { recursive: true, force: true }) };
}

/**
 * Sets `values` in process.env (entry points read their configuration when they are imported, so
 * import them after this). Returns the function that puts the environment back as it was.
 */
export function overrideEnv(values: Record<string, string>): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, values);
  return () => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  };
}

/** The body of an API Gateway Lambda result, decoded when base64 and parsed as JSON (undefined when empty). */
export function jsonOf(result: { body: string; isBase64Encoded?: boolean }): ReturnType<typeof JSON.parse> {
  const text = result.isBase64Encoded ? Buffer.from(result.body, "base64").toString("utf8") : result.body;
  return text ? JSON.parse(text) : undefined;
}
