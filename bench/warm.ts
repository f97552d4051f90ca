/**
 * Warm throughput and latency on the local runtime against real PostgreSQL: requests over HTTP
 * (keep-alive, fixed concurrency) from an in-process load loop to the runtime in its own process
 * (bench/servers/local-runtime.ts), next to
 *   - the floor (bench/peers/warm-floor.ts): the same SQL (recorded at the driver while the route
 *     ran) on node-postgres behind a bare node:http server, no framework, no token check;
 *   - the warm peer (bench/peers/warm-peer.ts): Hono on @hono/node-server + jose + pg, same SQL.
 * Targets are measured in alternating rounds so load from elsewhere falls on all of them alike.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { root } from "./lambda-build";
import { percentile, round } from "./lib";
import { type RecordedStatement, replayable } from "./peers/replay";
import type { PeerRoutes } from "./peers/warm-peer";

export interface LoadFigures {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  n: number;
  /**
   * CPU time (user + system) the server's process used per request while it was loaded, in
   * microseconds: unlike req/s, it hardly moves with load from elsewhere on the machine (Linux).
   */
  cpuUsPerRequest?: number;
}

export interface WarmRoute {
  route: string;
  kind: "read" | "write";
  statements: number;
  enclave: LoadFigures;
  floor: LoadFigures;
  peer: LoadFigures;
}

/** The local runtime opens each service's database with this many connections (runtime.ts); the peer and floor get as many. */
const LOCAL_RUNTIME_CONNECTIONS = 5;

// The loader in the server's own process (tsx's CLI would run it in a child of its own, whose
// CPU time could not be read).
const tsx = pathToFileURL(join(root, "node_modules", "tsx", "dist", "loader.mjs")).href;

/** Starts a server script; resolves with its port (its first stdout line). */
function startServer(args: string[], env: NodeJS.ProcessEnv): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsx, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) resolve({ port: Number(line), child });
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited ${code}: ${err.slice(0, 1000)}`)));
  });
}

interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: () => string;
}

function send(agent: http.Agent, port: number, request: Request): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const body = request.body?.();
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: request.path,
        method: request.method,
        agent,
        headers: { ...request.headers, ...(body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const clockTicksPerSecond = 100;

/** CPU time (user + system) a process has used so far, in microseconds; undefined where /proc is not there. */
function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return ((Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond) * 1e6;
  } catch {
    return undefined;
  }
}

/** `concurrency` loops sending `once` back to back for `ms`; latency of each. */
async function load(ms: number, concurrency: number, once: () => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        await once();
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

function figures(samples: number[][], msEach: number, cpuUs?: number): LoadFigures {
  const all = samples.flat();
  return {
    perSecond: Math.round(all.length / ((samples.length * msEach) / 1000)),
    p50Ms: round(percentile(all, 50), 2),
    p99Ms: round(percentile(all, 99), 2),
    n: all.length,
    ...(cpuUs === undefined ? {} : { cpuUsPerRequest: Math.round(cpuUs / all.length) }),
  };
}

export async function measureWarm(options: { rounds: number; msPerRound: number; concurrency: number }): Promise<WarmRoute[]> {
  const services = ["auth", "profile", "payments", "admin"];
  const databases: TestDatabase[] = [];
  const children: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-bench-warm-"));
  try {
    const urls: Record<string, string> = {};
    for (const service of services) {
      const database = await createTestDatabase([service]);
      databases.push(database);
      urls[service] = database.url;
    }
    const passwordCost = 10;
    const env = {
      PATH: process.env.PATH,
      DATA_DIR: dataDir,
      SEED: "none",
      LOCAL_CRONS: "0",
      LOG_LEVEL: "error",
      BENCH_PASSWORD_COST: String(passwordCost),
      ...Object.fromEntries(services.map((s) => [`${s.toUpperCase()}_DATABASE_URL`, urls[s] as string])),
    };
    const enclave = await startServer([join(root, "bench/servers/local-runtime.ts")], env);
    children.push(enclave.child);
    const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
    const json = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      send(agent, enclave.port, { method, path, headers, ...(body ? { body: () => JSON.stringify(body) } : {}) });

    const password = "bench-password";
    const register = async (name: string) => {
      const res = await json("POST", "/auth/register", { email: `${name}@bench.enclave.dev`, password, name });
      if (res.status !== 201) throw new Error(`register ${res.status} ${res.text}`);
      return JSON.parse(res.text) as { accessToken: string };
    };
    const alice = await register("alice");
    await register("bob");
    const bearer = { authorization: `Bearer ${alice.accessToken}` };
    await json("GET", "/profiles/me", undefined, bearer);
    for (let i = 0; i < 30; i++) {
      await json("POST", "/payments", { recipientEmail: "bob@bench.enclave.dev", amount: "1.00" }, { ...bearer, "idempotency-key": `seed-${i}` });
    }
    let key = 0;
    const routes: (Request & { route: string; service: string; kind: "read" | "write"; login?: boolean })[] = [
      { route: "GET /auth/me", service: "auth", kind: "read", method: "GET", path: "/auth/me", headers: bearer },
      { route: "GET /profiles/me", service: "profile", kind: "read", method: "GET", path: "/profiles/me", headers: bearer },
      { route: "GET /payments", service: "payments", kind: "read", method: "GET", path: "/payments", headers: bearer },
      {
        route: "POST /payments",
        service: "payments",
        kind: "write",
        method: "POST",
        path: "/payments",
        get headers() {
          return { ...bearer, "idempotency-key": `warm-${++key}` };
        },
        body: () => JSON.stringify({ recipientEmail: "bob@bench.enclave.dev", amount: "1.00" }),
      },
      {
        route: "POST /auth/login",
        service: "auth",
        kind: "write",
        login: true,
        method: "POST",
        path: "/auth/login",
        headers: {},
        body: () => JSON.stringify({ email: "alice@bench.enclave.dev", password }),
      },
    ];

    // The SQL each route sends, recorded twice to tell fixed values from fresh ones. Background
    // work (events, payment processing) runs in the same process: it is drained before each
    // recording and after each round, so no target's round inherits another's backlog.
    const settle = (): Promise<unknown> => json("GET", "/_bench/drain");
    const record = async (route: Request & { service: string }) => {
      await settle();
      await json("GET", "/_bench/statements");
      const res = await send(agent, enclave.port, { ...route, headers: { ...route.headers, "x-bench-record": "1" } });
      if (res.status >= 300) throw new Error(`${route.method} ${route.path}: ${res.status} ${res.text}`);
      const statements = JSON.parse((await json("GET", "/_bench/statements")).text) as (Omit<RecordedStatement, "fresh"> & { database: string })[];
      // The route's own database only: a call to another service (payments → auth) is an HTTP call there.
      const database = new URL(urls[route.service] as string).pathname.slice(1);
      return statements.filter((s) => s.database === database).map(({ database: _, ...statement }) => statement);
    };
    const recorded = new Map<string, RecordedStatement[]>();
    for (const route of routes) {
      const first = await record(route);
      const second = await record(route);
      const same = second.slice(0, first.length);
      recorded.set(route.route, replayable(first.slice(0, same.length), same));
    }

    const signingJwk = JSON.parse(readFileSync(join(dataDir, "local", "auth-signing-key.json"), "utf8"));
    const { d: _private, ...publicJwk } = signingJwk;
    const peerConfig: PeerRoutes = {
      databaseUrls: urls,
      jwks: { keys: [publicJwk] },
      signingJwk,
      passwordCost,
      connections: LOCAL_RUNTIME_CONNECTIONS,
      routes: routes.map((r) => ({
        method: r.method as "GET" | "POST",
        path: r.path,
        service: r.service,
        ...(r.login ? { login: true } : {}),
        statements: recorded.get(r.route) ?? [],
      })),
    };
    const peerFile = join(dataDir, "peer-routes.json");
    writeFileSync(peerFile, JSON.stringify(peerConfig));
    const peer = await startServer([join(root, "bench/peers/warm-peer.ts"), peerFile], { PATH: process.env.PATH });
    children.push(peer.child);
    const peerAgent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
    const floor = await startServer([join(root, "bench/peers/warm-floor.ts"), peerFile], { PATH: process.env.PATH });
    children.push(floor.child);
    const floorAgent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });

    const results: WarmRoute[] = [];
    for (const route of routes) {
      const statements = recorded.get(route.route) ?? [];
      // A failed request names the server that answered it.
      const check = (server: string, res: { status: number; text: string }) => {
        if (res.status >= 300) throw new Error(`${route.route} on ${server}: ${res.status} ${res.text.slice(0, 200)}`);
      };
      const targets = {
        enclave: async () => check("Enclave", await send(agent, enclave.port, route)),
        peer: async () => check("the warm peer", await send(peerAgent, peer.port, route)),
        floor: async () => check("the floor", await send(floorAgent, floor.port, route)),
      };
      // Warm-up: connections, prepared statements, JIT.
      for (const run of Object.values(targets)) await load(Math.min(500, options.msPerRound), options.concurrency, run);
      await settle();
      const samples: Record<keyof typeof targets, number[][]> = { enclave: [], peer: [], floor: [] };
      const pids = { enclave: enclave.child.pid, peer: peer.child.pid, floor: floor.child.pid };
      // The runtime's CPU includes the background work a round left, finished by `settle`.
      const cpu: Record<keyof typeof targets, number | undefined> = { enclave: 0, peer: 0, floor: 0 };
      const names = Object.keys(targets) as (keyof typeof targets)[];
      for (let i = 0; i < options.rounds; i++) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(i + k) % names.length] as keyof typeof targets;
          const before = cpuMicros(pids[name]);
          samples[name].push(await load(options.msPerRound, options.concurrency, targets[name]));
          await settle();
          const after = cpuMicros(pids[name]);
          cpu[name] = before === undefined || after === undefined || cpu[name] === undefined ? undefined : cpu[name] + (after - before);
        }
      }
      results.push({
        route: route.route,
        kind: route.kind,
        statements: statements.length,
        enclave: figures(samples.enclave, options.msPerRound, cpu.enclave),
        floor: figures(samples.floor, options.msPerRound, cpu.floor),
        peer: figures(samples.peer, options.msPerRound, cpu.peer),
      });
      process.stdout.write(`  warm: ${route.route} done\n`);
    }
    agent.destroy();
    peerAgent.destroy();
    floorAgent.destroy();
    return results;
  } finally {
    for (const child of children) {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
    }
    for (const database of databases) await database.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
