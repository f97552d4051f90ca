/**
 * Cold start, process start → first response, of each API Lambda built as deployed, on the path a
 * real cold request takes: an authenticated route that reads the database through the Neon
 * driver, against the local PostgreSQL server behind a local endpoint that speaks Neon's HTTP
 * (`/sql`) and WebSocket (`/v1`) protocols. Next to it, in the same interleaved runs:
 *   - the floor: a bundle that loads only the same driver and runs the same statement (the one
 *     the route sent, captured at the endpoint); the WebSocket driver's floor too;
 *   - the typical stack (bench/peers/typical-stack.ts) running the same statement;
 *   - for auth, the same API built with the previous all-WebSocket driver (bench/variants/);
 *   - the no-database route (auth's JWKS) against bare `node -e 0` and a hello-world Hono.
 * Also: bytes each process loads (files actually imported, measured with a module hook), the
 * driver's share, and the network round trips a cold request makes to the database.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { uuidv7 } from "@enclave/core/ids";
import { generatePrivateJwk, publicJwkOf } from "@enclave/core/keys";
import { apiGatewayEvent } from "@enclave/core/testing/aws-events";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { type NeonLocalEndpoint, startNeonLocalEndpoint } from "@enclave/core/testing/neon-http-endpoint";
import { sql } from "drizzle-orm";
import { buildLambda, buildVariant, composition, root } from "./lambda-build";
import { interleave, median, type ProcessRun, round, runNode } from "./lib";

const outRoot = join(root, ".bench", "cold");

interface Target {
  service: string;
  method: string;
  path: string;
  role: "CUSTOMER" | "ADMIN";
}

export const coldTargets: Target[] = [
  { service: "auth", method: "GET", path: "/auth/me", role: "CUSTOMER" },
  { service: "profile", method: "GET", path: "/profiles/me", role: "CUSTOMER" },
  { service: "payments", method: "GET", path: "/payments", role: "CUSTOMER" },
  { service: "admin", method: "GET", path: "/admin/config", role: "ADMIN" },
];

// The timed driver: import the bundle, answer one event, report CPU time and where the wall time
// went (ms since the process started: Node's own start-up, importing the bundle, the first request).
// Arguments: bundle, event.
const firstResponse = `import { readFileSync, writeSync } from "node:fs";
const started = performance.now();
const event = JSON.parse(readFileSync(process.argv[3], "utf8"));
const loading = performance.now();
const { handler } = await import(process.argv[2]);
const imported = performance.now();
const response = await handler(event, {});
const answered = performance.now();
if (response.statusCode !== 200) { console.error(response.statusCode, response.body); process.exit(1); }
writeSync(2, "\\n" + JSON.stringify({ ...process.cpuUsage(), phases: { startup: started, import: imported - loading, request: answered - imported } }));
process.exit(0);
`;
// Not timed: the same, recording every file module the process imported.
const loadedFiles = `import { registerHooks } from "node:module";
import { readFileSync, writeSync } from "node:fs";
const loaded = [];
registerHooks({ load(url, context, next) { if (url.startsWith("file:")) loaded.push(url); return next(url, context); } });
const event = JSON.parse(readFileSync(process.argv[3], "utf8"));
const { handler } = await import(process.argv[2]);
const response = await handler(event, {});
if (response.statusCode !== 200) { console.error(response.statusCode, response.body); process.exit(1); }
writeSync(2, "\\n" + JSON.stringify(loaded));
process.exit(0);
`;

// Not timed: 3000 warm invocations in one process (a Lambda instance's life). Peak RSS over the first
// 1000; the JavaScript heap still in use after a full collection at 1000 and at 3000 (a leak grows it;
// RSS also moves with how much heap V8 chooses to keep reserved, so it is not the leak signal).
const warmMemory = `import { readFileSync, writeSync } from "node:fs";
const event = JSON.parse(readFileSync(process.argv[3], "utf8"));
const { handler } = await import(process.argv[2]);
const at = {};
let peak = 0;
for (let i = 1; i <= 3000; i++) {
  const response = await handler(event, {});
  if (response.statusCode !== 200) { console.error(response.statusCode, response.body); process.exit(1); }
  if (i === 1000) peak = process.resourceUsage().maxRSS * 1024;
  if (i === 1000 || i === 3000) { globalThis.gc(); globalThis.gc(); const m = process.memoryUsage(); at[i] = { heapUsed: m.heapUsed, rss: m.rss }; }
}
writeSync(2, "\\n" + JSON.stringify({ peak, at1000: at[1000], at3000: at[3000] }));
process.exit(0);
`;

export interface MemoryFigures {
  /** Peak resident set size over the first 1000 invocations, bytes. */
  peak: number;
  /** Heap in use after a full collection, after 1000 and 3000 invocations, bytes. */
  heapAt1000: number;
  heapAt3000: number;
  /** heapAt3000 − heapAt1000: what a leak of even a few bytes per request shows as. */
  heapGrowth: number;
  rssAt1000: number;
  rssAt3000: number;
}

interface Subject {
  name: string;
  /** A bundle's URL, or empty for bare `node -e 0` (which reports its CPU time the same way). */
  main: string;
  event: string;
  env: NodeJS.ProcessEnv;
  metafile?: import("esbuild").Metafile;
}

export interface SubjectFigures {
  ms: number;
  cpuMs: number;
  /** Medians of where the wall time went, as the process measured it (see `firstResponse`). */
  phases?: { startup: number; import: number; request: number };
  loadedBytes?: number;
  driverBytes?: number;
  roundTrips?: number;
  groups?: { group: string; bytes: number }[];
}

async function loadedOf(subject: Subject, endpoint: NeonLocalEndpoint) {
  endpoint.reset();
  const run = await runNode([join(outRoot, "loaded-files.mjs"), subject.main, subject.event], subject.env);
  const roundTrips = endpoint.roundTrips;
  const urls = JSON.parse(run.stderr.trim().split("\n").at(-1) as string) as string[];
  const files = urls.map((url) => new URL(url).pathname);
  const loadedBytes = files.reduce((sum, file) => sum + statSync(file).size, 0);
  const composed = subject.metafile
    ? composition(
        subject.metafile,
        files.map((f) => f.replace(/^.*\//, "")),
      )
    : undefined;
  return { loadedBytes, roundTrips, ...(composed ? { driverBytes: composed.driverBytes, groups: composed.groups.slice(0, 8) } : {}) };
}

const bareNode = [
  "-e",
  "require('node:fs').writeSync(2, '\\n' + JSON.stringify({ ...process.cpuUsage(), phases: { startup: performance.now(), import: 0, request: 0 } }))",
];
const argsOf = (s: Subject) => (s.main ? [join(outRoot, "first-response.mjs"), s.main, s.event] : bareNode);

async function measure(subjects: Subject[], runs: number, endpoint: NeonLocalEndpoint): Promise<Record<string, SubjectFigures>> {
  const extra: Record<string, Partial<Awaited<ReturnType<typeof loadedOf>>>> = {};
  for (const subject of subjects) {
    // Warms the file cache, and checks each one answers before anything is timed.
    await runNode(argsOf(subject), subject.env);
    extra[subject.name] = subject.main ? await loadedOf(subject, endpoint) : {};
  }
  const samples = await interleave(runs, Object.fromEntries(subjects.map((s) => [s.name, () => runNode(argsOf(s), s.env)])));
  return Object.fromEntries(
    subjects.map((s) => {
      const runsOf = samples[s.name] ?? [];
      const phase = (name: keyof NonNullable<ProcessRun["phases"]>) => round(median(runsOf.map((r) => r.phases?.[name] ?? 0)));
      const phases = runsOf.every((r) => r.phases) ? { startup: phase("startup"), import: phase("import"), request: phase("request") } : undefined;
      return [
        s.name,
        { ms: round(median(runsOf.map((r) => r.ms))), cpuMs: round(median(runsOf.map((r) => r.cpuMs ?? 0))), ...(phases ? { phases } : {}), ...extra[s.name] },
      ];
    }),
  );
}

async function memoryOf(subject: Subject): Promise<MemoryFigures> {
  const run = await runNode(["--expose-gc", join(outRoot, "warm-memory.mjs"), subject.main, subject.event], subject.env);
  type Point = { heapUsed: number; rss: number };
  const m = JSON.parse(run.stderr.trim().split("\n").at(-1) as string) as { peak: number; at1000: Point; at3000: Point };
  return {
    peak: m.peak,
    heapAt1000: m.at1000.heapUsed,
    heapAt3000: m.at3000.heapUsed,
    heapGrowth: m.at3000.heapUsed - m.at1000.heapUsed,
    rssAt1000: m.at1000.rss,
    rssAt3000: m.at3000.rss,
  };
}

async function seed(service: string, database: TestDatabase, userId: string) {
  const at = (table: string) => sql.raw(`"${service}"."${table}"`);
  if (service === "auth") {
    await database.db.execute(
      sql`insert into ${at("users")} (id, email, name, password_hash, role) values (${userId}, 'cold@bench.enclave.dev', 'Cold', 'x', 'CUSTOMER')`,
    );
  }
}

export interface ColdStartResult {
  runs: number;
  services: Record<
    string,
    {
      route: string;
      statement: { query: string; params: unknown[] } | undefined;
      memory: MemoryFigures;
      figures: Record<string, SubjectFigures>;
    }
  >;
  noDatabase: Record<string, SubjectFigures>;
}

/** Without a server (`serverUrl` undefined) only the no-database route is measured. */
export async function measureColdStart(options: { runs: number; serverUrl: string | undefined }): Promise<ColdStartResult> {
  rmSync(outRoot, { recursive: true, force: true });
  mkdirSync(outRoot, { recursive: true });
  writeFileSync(join(outRoot, "first-response.mjs"), firstResponse);
  writeFileSync(join(outRoot, "loaded-files.mjs"), loadedFiles);
  writeFileSync(join(outRoot, "warm-memory.mjs"), warmMemory);

  const jwk = generatePrivateJwk();
  const publicJwks = JSON.stringify({ keys: [publicJwkOf(jwk)] });
  const key = await importSigningKey(jwk);
  const settings = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 3600 };
  const userId = uuidv7();
  const endpoint = await startNeonLocalEndpoint();
  const databases: TestDatabase[] = [];
  const baseEnv = { PATH: process.env.PATH, LOG_LEVEL: "warn", STAGE: "bench", NEON_WS_PROXY: endpoint.wsProxy };

  // Peers, built once.
  const peers: Record<string, { main: string; metafile: import("esbuild").Metafile }> = {};
  for (const peer of ["floor-http", "floor-ws", "floor-fetch", "typical-stack", "hello-hono"]) {
    peers[peer] = await buildVariant(`bench/peers/${peer}.ts`, join(outRoot, "peers", peer));
  }
  const result: ColdStartResult = { runs: options.runs, services: {}, noDatabase: {} };
  try {
    for (const target of options.serverUrl ? coldTargets : []) {
      const dir = join(outRoot, target.service);
      mkdirSync(dir, { recursive: true });
      const database = await createTestDatabase([target.service]);
      databases.push(database);
      await seed(target.service, database, userId);
      const token = await signAccessToken(key, settings, { id: userId, role: target.role });
      const event = join(dir, "event.json");
      writeFileSync(event, JSON.stringify(apiGatewayEvent({ method: target.method, path: target.path, query: "", token })));
      const neonUrl = new URL(database.url);
      neonUrl.searchParams.set("driver", "neon");
      const env = {
        ...baseEnv,
        [`${target.service.toUpperCase()}_DATABASE_URL`]: neonUrl.toString(),
        ...(target.service === "auth" ? { AUTH_SIGNING_KEY: JSON.stringify(jwk) } : { AUTH_PUBLIC_JWKS: publicJwks }),
        ...(target.service === "payments" ? { SERVICE_SIGNING_KEY: JSON.stringify(generatePrivateJwk()) } : {}),
      };
      const bundle = await buildLambda(`functions/${target.service}/api.ts`, join(dir, "api"));
      const real: Subject = { name: "enclave", main: pathToFileURL(bundle.main).href, event, env, metafile: bundle.metafile };

      // The statement the route sends, for the floor and the peer to send too.
      endpoint.reset();
      await runNode([join(outRoot, "first-response.mjs"), real.main, real.event], real.env);
      const last = endpoint.recent.at(-1);
      const statement = last ? { query: last.query, params: last.params ?? [] } : undefined;
      const plainUrl = new URL(database.url);
      plainUrl.searchParams.delete("driver");
      const peerEnv = {
        ...baseEnv,
        BENCH_NEON_PROXY: endpoint.wsProxy,
        BENCH_DATABASE_URL: plainUrl.toString(),
        BENCH_STATEMENT: JSON.stringify(statement ?? { query: "select 1", params: [] }),
        BENCH_JWKS: publicJwks,
        BENCH_PATH: target.path,
      };
      const peer = (name: string): Subject => ({
        name,
        main: pathToFileURL((peers[name] as { main: string }).main).href,
        event,
        env: peerEnv,
        metafile: (peers[name] as { metafile: import("esbuild").Metafile }).metafile,
      });
      const subjects = [real, peer("floor-http"), peer("floor-ws"), peer("typical-stack")];
      if (target.service === "auth") {
        const ws = await buildVariant("functions/auth/api.ts", join(dir, "ws-only"), { "packages/core/src/db/neon.ts": "bench/variants/neon-ws-only.ts" });
        subjects.push(
          { name: "enclave-ws-only", main: pathToFileURL(ws.main).href, event, env, metafile: ws.metafile },
          peer("floor-fetch"),
          // What compiling the bundle costs: the same bundle with V8's code cache on disk, filled by the untimed first run.
          { ...real, name: "enclave-compile-cache", env: { ...env, NODE_COMPILE_CACHE: join(outRoot, "compile-cache") } },
        );
      }
      process.stdout.write(`  cold start: ${target.service} ${target.method} ${target.path} (${subjects.length} subjects × ${options.runs} runs)\n`);
      result.services[target.service] = {
        route: `${target.method} ${target.path}`,
        statement,
        figures: await measure(subjects, options.runs, endpoint),
        memory: await memoryOf(real),
      };
    }

    // The no-database route.
    const dir = join(outRoot, "no-database");
    mkdirSync(dir, { recursive: true });
    const event = join(dir, "event.json");
    writeFileSync(event, JSON.stringify(apiGatewayEvent({ method: "GET", path: "/auth/.well-known/jwks.json", query: "" })));
    const authBundle = join(outRoot, "auth", "api");
    const env = { ...baseEnv, AUTH_DATABASE_URL: "postgres://app@ep-bench-000000.us-east-1.aws.neon.tech/auth", AUTH_SIGNING_KEY: JSON.stringify(jwk) };
    const auth = await buildLambda("functions/auth/api.ts", authBundle);
    process.stdout.write(`  cold start: no-database route (3 subjects × ${options.runs} runs)\n`);
    const subjects: Subject[] = [
      { name: "enclave", main: pathToFileURL(auth.main).href, event, env, metafile: auth.metafile },
      { name: "hello-hono", main: pathToFileURL((peers["hello-hono"] as { main: string }).main).href, event, env },
      { name: "bare", main: "", event, env },
    ];
    result.noDatabase = await measure(subjects, options.runs, endpoint);
    return result;
  } finally {
    for (const database of databases) await database.dispose();
    await endpoint.close();
  }
}
