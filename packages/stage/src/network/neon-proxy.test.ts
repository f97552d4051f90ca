import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { InvokeOutcome } from "../contracts";
import { type DeployedFunction, deployFunction } from "../lambda/deploy";
import { type NeonProxy, neonEndpoint, startNeonProxy } from "./neon-proxy";
import { twinFetchUrl, twinWebSocketUrl } from "./twin-preload";

const testServerUrl = process.env.TEST_DATABASE_URL || undefined;
const PASSWORD = "s3cret-Pa55";

/** A PostgreSQL server that speaks only what these tests need: startup, the four password methods, and simple queries answered with one row. */
interface FakePostgres {
  port: number;
  /** What the server saw: `auth ok <user>`, `query <text>`, and any protocol violation. */
  log: string[];
  close(): Promise<void>;
}

function pgMessage(type: string, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(data.length + 4, 1);
  return Buffer.concat([head, data]);
}

const int32 = (...values: number[]) => {
  const buffer = Buffer.alloc(4 * values.length);
  for (const [i, value] of values.entries()) buffer.writeInt32BE(value, i * 4);
  return buffer;
};

async function fakePostgres(): Promise<FakePostgres> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    let user = "";
    let step: "startup" | "password" | "md5" | "scram-first" | "scram-final" | "ready" = "startup";
    const salt = randomBytes(4);
    const scramSalt = randomBytes(16);
    let clientFirstBare = "";
    let serverFirst = "";
    const saltedPassword = pbkdf2Sync(PASSWORD, scramSalt, 4096, 32, "sha256");
    const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();

    const ready = () => {
      log.push(`auth ok ${user}`);
      step = "ready";
      socket.write(
        Buffer.concat([pgMessage("R", int32(0)), pgMessage("S", "server_version\u000015.0\u0000"), pgMessage("K", int32(42, 4242)), pgMessage("Z", "I")]),
      );
    };
    const fail = (code: string, text: string) => {
      log.push(`error ${code} ${text}`);
      socket.end(pgMessage("E", `SFATAL\0VFATAL\0C${code}\0M${text}\0\0`));
    };
    const badPassword = () => fail("28P01", `password authentication failed for user "${user}"`);

    const handle = (type: string, body: Buffer) => {
      if (step !== "ready" && type !== "p") return fail("08P01", `expected a password message, got ${type}`);
      if (step === "password") return body.toString("utf8").replace(/\0$/, "") === PASSWORD ? ready() : badPassword();
      if (step === "md5") {
        const inner = createHash("md5")
          .update(PASSWORD + user)
          .digest("hex");
        const expected = `md5${createHash("md5")
          .update(Buffer.concat([Buffer.from(inner), salt]))
          .digest("hex")}\0`;
        return body.toString("utf8") === expected ? ready() : badPassword();
      }
      if (step === "scram-first") {
        const mechanismEnd = body.indexOf(0);
        if (body.toString("utf8", 0, mechanismEnd) !== "SCRAM-SHA-256") return fail("28000", "unexpected mechanism");
        const clientFirst = body.toString("utf8", mechanismEnd + 5);
        clientFirstBare = clientFirst.replace(/^n,,/, "");
        const clientNonce = /r=([^,]+)/.exec(clientFirstBare)?.[1] ?? "";
        serverFirst = `r=${clientNonce}${randomBytes(12).toString("base64")},s=${scramSalt.toString("base64")},i=4096`;
        step = "scram-final";
        socket.write(pgMessage("R", Buffer.concat([int32(11), Buffer.from(serverFirst)])));
        return;
      }
      if (step === "scram-final") {
        const clientFinal = body.toString("utf8");
        const withoutProof = clientFinal.replace(/,p=[^,]*$/, "");
        const proof = Buffer.from(/,p=([^,]*)$/.exec(clientFinal)?.[1] ?? "", "base64");
        const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const storedKey = createHash("sha256").update(hmac(saltedPassword, "Client Key")).digest();
        const signature = hmac(storedKey, authMessage);
        const clientKey = Buffer.from(proof.map((byte, i) => byte ^ (signature[i] ?? 0)));
        if (!createHash("sha256").update(clientKey).digest().equals(storedKey)) return badPassword();
        socket.write(pgMessage("R", Buffer.concat([int32(12), Buffer.from(`v=${hmac(hmac(saltedPassword, "Server Key"), authMessage).toString("base64")}`)])));
        return ready();
      }
      // Ready for queries.
      if (type === "p") return fail("08P01", "unexpected password message after authentication");
      if (type === "X") return socket.end();
      if (type !== "Q") return fail("08P01", `unsupported message ${type}`);
      const text = body.toString("utf8").replace(/\0$/, "");
      log.push(`query ${text}`);
      const rowDescription = Buffer.concat([Buffer.from("one\0"), Buffer.alloc(6), int32(23), Buffer.from([0, 4]), int32(-1), Buffer.from([0, 0])]);
      socket.write(
        Buffer.concat([
          pgMessage("T", Buffer.concat([Buffer.from([0, 1]), rowDescription])),
          pgMessage("D", Buffer.concat([Buffer.from([0, 1]), int32(1), Buffer.from("1")])),
          pgMessage("C", "SELECT 1\0"),
          pgMessage("Z", "I"),
        ]),
      );
    };

    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (socket.writableEnded) return;
        if (step === "startup") {
          if (buffer.length < 8 || buffer.length < buffer.readInt32BE(0)) return;
          const size = buffer.readInt32BE(0);
          const parts = buffer.toString("utf8", 8, size).split("\0");
          buffer = buffer.subarray(size);
          user = parts[parts.indexOf("user") + 1] ?? "";
          const method = user.split("_")[0];
          if (method === "trust") {
            ready();
          } else if (method === "password") {
            step = "password";
            socket.write(pgMessage("R", int32(3)));
          } else if (method === "md5") {
            step = "md5";
            socket.write(pgMessage("R", Buffer.concat([int32(5), salt])));
          } else {
            step = "scram-first";
            socket.write(pgMessage("R", Buffer.concat([int32(10), Buffer.from("SCRAM-SHA-256\0\0")])));
          }
          continue;
        }
        if (buffer.length < 5 || buffer.length < 1 + buffer.readInt32BE(1)) return;
        const size = 1 + buffer.readInt32BE(1);
        const type = String.fromCharCode(buffer[0]!);
        const body = buffer.subarray(5, size);
        buffer = buffer.subarray(size);
        handle(type, body);
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    port: (server.address() as { port: number }).port,
    log,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

/** The application's way to the database: a Pool with the driver's default configuration. */
const program = `
  import { neonConfig, Pool } from "@neondatabase/serverless";
  export const handler = async (event) => {
    if (event.pipelineConnect === false) neonConfig.pipelineConnect = false;
    const pool = new Pool({ connectionString: event.url ?? process.env.DATABASE_URL });
    pool.on("error", () => {});
    try {
      const one = (await pool.query("select 1 as one")).rows[0].one;
      if (!event.transaction) return { one };
      const client = await pool.connect();
      try {
        await client.query("begin");
        await client.query("create temporary table twin_check (n int) on commit drop");
        await client.query("insert into twin_check values (40), (2)");
        const sum = (await client.query("select sum(n)::int as total from twin_check")).rows[0].total;
        await client.query("commit");
        return { one, sum, user: (await client.query("select current_user as u")).rows[0].u };
      } finally {
        client.release();
      }
    } catch (error) {
      return { error: error.message, code: error.code };
    } finally {
      await pool.end();
    }
  };`;

const probe = `
  export const handler = (event) => new Promise((resolve) => {
    const ws = new WebSocket(event.url);
    ws.onopen = () => { resolve({ url: ws.url, open: true, name: WebSocket.name, native: ws instanceof EventTarget }); ws.close(); };
    ws.onerror = () => resolve({ url: ws.url, open: false });
  });`;

const caller = `
  export const handler = async (event) => {
    const viaRequest = await fetch(new Request(event.api + "/payments/recipients?email=a%40b.io", { method: "POST", body: '{"amount":5}', headers: { "x-service": "payments" } }));
    const viaString = await fetch(event.api + "/auth/health");
    const direct = await fetch(event.direct);
    return [await viaRequest.json(), await viaString.json(), await direct.json()];
  };`;

const codeDir = mkdtempSync(join(tmpdir(), "enclave-neon-twin-"));
const endpointUrl = (user: string, password = PASSWORD) => `postgres://${user}:${password}@ep-twin-123456-pooler.us-east-1.aws.neon.tech/auth?sslmode=require`;
const result = (outcome: InvokeOutcome) => {
  if (!outcome.ok) throw new Error(`${outcome.errorType}: ${outcome.errorMessage}`);
  return outcome.result;
};

beforeAll(async () => {
  await build({
    stdin: { contents: program, resolveDir: import.meta.dirname, loader: "js" },
    outfile: join(codeDir, "db.mjs"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    banner: { js: `import { createRequire as topLevelCreateRequire } from "module"; const require = topLevelCreateRequire(import.meta.url);` },
    logLevel: "error",
  });
  writeFileSync(join(codeDir, "probe.mjs"), probe);
  writeFileSync(join(codeDir, "caller.mjs"), caller);
});
afterAll(() => rmSync(codeDir, { recursive: true, force: true }));

describe("neonEndpoint and twinWebSocketUrl", () => {
  test("the proxy accepts only Neon endpoint hosts on PostgreSQL's port", () => {
    expect(neonEndpoint("/v2?address=ep-twin-123456-pooler.us-east-1.aws.neon.tech:5432")).toBe("ep-twin-123456-pooler.us-east-1.aws.neon.tech");
    expect(neonEndpoint("/v1?address=EP-X.eu-central-1.aws.neon.tech:5432")).toBe("ep-x.eu-central-1.aws.neon.tech");
    for (const url of [
      undefined,
      "/v2",
      "/v2?address=127.0.0.1:5432",
      "/v2?address=localhost:5432",
      "/v2?address=ep-x.neon.tech:22",
      "/v2?address=ep-x.neon.tech",
      "/v2?address=ep-x.neon.tech.evil.example:5432",
      "/v2?address=evil.example/.neon.tech:5432",
      "/v2?address=neon.tech:5432",
      "/v2?address=ep-x.neon.tech:5432&address=ep-y.neon.tech:5432",
      "/v3?address=ep-x.neon.tech:5432",
      "http://evil.example/v2?address=ep-x.neon.tech:5432",
    ]) {
      expect(neonEndpoint(url), String(url)).toBeUndefined();
    }
  });

  test("the preload rewrites only *.neon.tech WebSocket URLs", () => {
    expect(twinWebSocketUrl("wss://ep-a-1-pooler.us-east-1.aws.neon.tech/v2", 7000)).toBe(
      "ws://127.0.0.1:7000/v2?address=ep-a-1-pooler.us-east-1.aws.neon.tech:5432",
    );
    expect(twinWebSocketUrl("wss://example.com/v2", 7000)).toBe("wss://example.com/v2");
    expect(twinWebSocketUrl("wss://neon.tech.example.com/v2", 7000)).toBe("wss://neon.tech.example.com/v2");
    expect(twinWebSocketUrl("https://ep-a.neon.tech/sql", 7000)).toBe("https://ep-a.neon.tech/sql");
  });

  test("the preload sends fetch calls to the stage's API origins to the local gateway", () => {
    const origins = new Map([["https://abc123.execute-api.us-east-1.amazonaws.com", "http://127.0.0.1:7100/"]]);
    expect(twinFetchUrl("https://abc123.execute-api.us-east-1.amazonaws.com/auth/users?id=1", origins)).toBe("http://127.0.0.1:7100/auth/users?id=1");
    expect(twinFetchUrl("https://abc123.execute-api.us-east-1.amazonaws.com:8443/auth", origins)).toBeUndefined();
    expect(twinFetchUrl("http://abc123.execute-api.us-east-1.amazonaws.com/auth", origins)).toBeUndefined();
    expect(twinFetchUrl("https://example.com/auth", origins)).toBeUndefined();
  });
});

describe("a function's fetch calls to the stage's API origins", () => {
  test("reach the local gateway, with method, headers and body; other URLs are untouched", async () => {
    const seen: string[] = [];
    const gateway = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        seen.push(`${req.method} ${req.url}`);
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ via: "gateway", path: req.url, body, service: req.headers["x-service"] }));
      });
    });
    const elsewhere = createHttpServer((req, res) => res.writeHead(200).end(JSON.stringify({ via: "direct", path: req.url })));
    await Promise.all([gateway, elsewhere].map((server) => new Promise<void>((done) => server.listen(0, "127.0.0.1", done))));
    const portOf = (server: typeof gateway) => (server.address() as { port: number }).port;
    const api = "https://abc123.execute-api.us-east-1.amazonaws.com";
    const fn = deployFunction(
      { name: "caller", codeDir, handler: "caller.handler", environment: {}, timeoutSeconds: 5, memoryMb: 128 },
      { region: "us-east-1", neonProxyPort: 9, apiOrigins: { [api]: `http://127.0.0.1:${portOf(gateway)}` } },
    );
    try {
      expect(result(await fn.invoke({ api, direct: `http://127.0.0.1:${portOf(elsewhere)}/direct` }))).toEqual([
        { via: "gateway", path: "/payments/recipients?email=a%40b.io", body: '{"amount":5}', service: "payments" },
        { via: "gateway", path: "/auth/health", body: "" },
        { via: "direct", path: "/direct" },
      ]);
      expect(seen).toEqual(["POST /payments/recipients?email=a%40b.io", "GET /auth/health"]);
    } finally {
      await fn.close();
      await Promise.all([gateway, elsewhere].map((server) => new Promise((done) => server.close(done))));
    }
  });
});

describe("a function reaches Neon through the preload and the proxy (fake PostgreSQL)", () => {
  let postgres: FakePostgres;
  let proxy: NeonProxy;
  let fn: DeployedFunction;
  let plain: WebSocketServer;
  const plainPaths: string[] = [];

  beforeAll(async () => {
    postgres = await fakePostgres();
    proxy = await startNeonProxy({ target: { host: "127.0.0.1", port: postgres.port } });
    fn = deployFunction(
      { name: "db", codeDir, handler: "db.handler", environment: {}, timeoutSeconds: 10, memoryMb: 512 },
      { region: "us-east-1", neonProxyPort: proxy.port },
    );
    plain = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    plain.on("connection", (_ws, request) => plainPaths.push(request.url ?? ""));
    await new Promise((done) => plain.once("listening", done));
  });
  afterAll(async () => {
    await fn?.close();
    await proxy?.close();
    await postgres?.close();
    await new Promise((done) => plain.close(done));
  });

  /** Speaks to the proxy as the driver does: startup, then (pipelined) password and a query; returns what the client receives. */
  function rawClient(user: string, pipelined: boolean): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const received: string[] = [];
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/v2?address=ep-raw-1.us-east-1.aws.neon.tech:5432`);
      ws.on("error", reject);
      ws.on("open", () => {
        const parameters = Buffer.from(`user\0${user}\0database\0auth\0\0`);
        const startup = Buffer.concat([int32(8 + parameters.length, 196608), parameters]);
        ws.send(pipelined ? Buffer.concat([startup, pgMessage("p", `${PASSWORD}\0`), pgMessage("Q", "select 1\0")]) : startup);
      });
      let buffer = Buffer.alloc(0);
      ws.on("message", (data: Buffer) => {
        buffer = Buffer.concat([buffer, data]);
        while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
          const type = String.fromCharCode(buffer[0]!);
          received.push(type === "R" ? `R${buffer.readInt32BE(5)}` : type);
          buffer = buffer.subarray(1 + buffer.readInt32BE(1));
        }
        if (!pipelined || received.filter((type) => type === "Z").length === 2 || received.includes("E")) {
          ws.close();
          resolve(received);
        }
      });
    });
  }

  test.each(["trust", "password", "md5", "scram"])("%s: a pipelined client sees AuthenticationOk, never the server's password request", async (method) => {
    expect(await rawClient(`${method}_raw`, true)).toEqual(["R0", "S", "K", "Z", "T", "D", "C", "Z"]);
    expect(postgres.log).toContain(`auth ok ${method}_raw`);
    expect(postgres.log).toContain("query select 1");
  });

  test.each([
    ["password", "R3"],
    ["md5", "R5"],
    ["scram", "R10"],
  ])("%s: a client that sent no password gets the server's request", async (method, request) => {
    expect(await rawClient(`${method}_asks`, false)).toEqual([request]);
  });

  test("trust: the pipelined password is dropped, the pipelined query goes through", async () => {
    expect(result(await fn.invoke({ url: endpointUrl("trust_app", "anything") }))).toEqual({ one: 1 });
    expect(postgres.log).toContain("auth ok trust_app");
    expect(postgres.log.filter((line) => line.startsWith("error"))).toEqual([]);
  });

  test.each(["password", "md5", "scram"])("%s: the proxy answers the server with the pipelined password", async (method) => {
    expect(result(await fn.invoke({ url: endpointUrl(`${method}_app`) }))).toEqual({ one: 1 });
    expect(postgres.log).toContain(`auth ok ${method}_app`);
  });

  test.each(["password", "md5", "scram"])("%s: a wrong password fails as the server says", async (method) => {
    expect(result(await fn.invoke({ url: endpointUrl(`${method}_wrong`, "not-it") }))).toEqual({
      error: `password authentication failed for user "${method}_wrong"`,
      code: "28P01",
    });
  });

  test.each(["password", "md5", "scram"])("%s: a client that does not pipeline authenticates itself", async (method) => {
    const fresh = deployFunction(
      { name: "db-no-pipeline", codeDir, handler: "db.handler", environment: {}, timeoutSeconds: 10, memoryMb: 512 },
      { region: "us-east-1", neonProxyPort: proxy.port },
    );
    try {
      expect(result(await fresh.invoke({ url: endpointUrl(`${method}_nopipe`), pipelineConnect: false }))).toEqual({ one: 1 });
      expect(postgres.log).toContain(`auth ok ${method}_nopipe`);
    } finally {
      await fresh.close();
    }
  });

  test("other WebSocket URLs pass through the preload unchanged", async () => {
    const probeFn = deployFunction(
      { name: "probe", codeDir, handler: "probe.handler", environment: {}, timeoutSeconds: 5, memoryMb: 128 },
      { region: "us-east-1", neonProxyPort: proxy.port },
    );
    try {
      const port = (plain.address() as { port: number }).port;
      expect(result(await probeFn.invoke({ url: `ws://127.0.0.1:${port}/plain?x=1` }))).toEqual({
        url: `ws://127.0.0.1:${port}/plain?x=1`,
        open: true,
        name: "WebSocket",
        native: true,
      });
      expect(plainPaths).toEqual(["/plain?x=1"]);
      const before = proxy.connections;
      expect(result(await probeFn.invoke({ url: "wss://ep-probe-1.us-east-2.aws.neon.tech/v2" }))).toMatchObject({
        url: `ws://127.0.0.1:${proxy.port}/v2?address=ep-probe-1.us-east-2.aws.neon.tech:5432`,
        open: true,
      });
      expect(proxy.connections).toBe(before + 1);
    } finally {
      await probeFn.close();
    }
  });

  test("the proxy refuses other addresses before connecting anywhere", async () => {
    const status = (address: string) =>
      new Promise<number | "open">((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/v2?address=${address}`);
        ws.on("open", () => {
          ws.terminate();
          resolve("open");
        });
        ws.on("unexpected-response", (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("error", () => {});
      });
    const before = proxy.connections;
    expect(await status("127.0.0.1:5432")).toBe(403);
    expect(await status("example.com:5432")).toBe(403);
    expect(await status("ep-x.us-east-1.aws.neon.tech:6543")).toBe(403);
    expect(proxy.refused).toEqual(expect.arrayContaining(["127.0.0.1:5432", "example.com:5432", "ep-x.us-east-1.aws.neon.tech:6543"]));
    expect(proxy.connections).toBe(before);
  });
});

// The local PostgreSQL server at TEST_DATABASE_URL standing in for a Neon endpoint: skipped without it.
describe.skipIf(!testServerUrl)("a function reaches the local PostgreSQL server as a Neon endpoint (skipped: set TEST_DATABASE_URL)", () => {
  let proxy: NeonProxy;
  let fn: DeployedFunction;

  beforeAll(async () => {
    const server = new URL(testServerUrl as string);
    proxy = await startNeonProxy({ target: { host: server.hostname, port: Number(server.port || 5432) } });
    fn = deployFunction(
      {
        name: "db-real",
        codeDir,
        handler: "db.handler",
        environment: { DATABASE_URL: "postgres://postgres:x@ep-test-000-pooler.us-east-1.aws.neon.tech/postgres?sslmode=require" },
        timeoutSeconds: 10,
        memoryMb: 512,
      },
      { region: "us-east-1", neonProxyPort: proxy.port },
    );
  });
  afterAll(async () => {
    await fn?.close();
    await proxy?.close();
  });

  test("select 1 and a transaction, with the driver's default configuration", async () => {
    expect(result(await fn.invoke({ transaction: true }))).toEqual({ one: 1, sum: 42, user: "postgres" });
    expect(proxy.connections).toBeGreaterThanOrEqual(1);
  });
});
