/**
 * `npm run bench`: the performance targets, measured on this machine with a baseline measured in
 * the same run. Prints a table and writes .bench/results.json.
 *
 *   - API Lambda bundle size (esbuild, ESM, minified, as deployed): entry, cold-loaded, total.
 *   - Process start to first response of that bundle vs a bare `node -e 0` (median of N runs,
 *     interleaved in rotating order), plus the CPU time each process reports for itself, which a
 *     busy machine disturbs much less than wall time.
 *   - DB round trips per auth route (counted by the driver logger).
 *   - Warm read throughput of GET /auth/me vs the same SQL run directly on the driver.
 *   - Local event latency, commit → effect (user.registered → profile row), bench/event-latency.ts.
 *
 * Set TEST_DATABASE_URL to measure reads against a PostgreSQL server instead of PGlite.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { apiGatewayEvent } from "@enclave/core/testing/aws-events";
import { configureLog } from "../packages/core/src/log";
import { measureAuth } from "./auth-routes";
import { measureEventLatency } from "./event-latency";
import { buildLambda, root } from "./lambda-build";

const runs = Number(process.env.BENCH_RUNS ?? 21);
const outRoot = join(root, ".bench");
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** Runs node with `args`; returns the wall time and what the process wrote to stderr. */
function runProcess(args: string[], env: NodeJS.ProcessEnv): { ms: number; stderr: string } {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`process failed: ${result.stderr.toString().slice(0, 500)}`);
  return { ms, stderr: result.stderr.toString() };
}

/** CPU milliseconds (user + system, all threads) a process reported as its last stderr line. */
const reportCpu = "require('node:fs').writeSync(2, '\\n' + JSON.stringify(process.cpuUsage()))";
function cpuOf(stderr: string): number {
  const { user, system } = JSON.parse(stderr.trim().split("\n").at(-1) as string) as { user: number; system: number };
  return (user + system) / 1000;
}

async function coldStart(service: string, path: string, env: NodeJS.ProcessEnv) {
  const outdir = join(outRoot, service);
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const bundle = await buildLambda(`functions/${service}/api.ts`, outdir);
  writeFileSync(join(outdir, "event.json"), JSON.stringify(apiGatewayEvent({ method: "GET", path, query: "" })));
  const firstResponse = (after: string) => `import { readFileSync, writeSync } from "node:fs";
const event = JSON.parse(readFileSync(new URL("./event.json", import.meta.url), "utf8"));
const { handler } = await import("./${basename(bundle.main)}");
const response = await handler(event, {});
if (response.statusCode !== 200) { console.error(response.statusCode, response.body); process.exit(1); }
${after}`;
  // Timed: reports its CPU time once the response is there.
  writeFileSync(join(outdir, "first-response.mjs"), firstResponse("writeSync(2, '\\n' + JSON.stringify(process.cpuUsage()));"));
  // Not timed: which of Node's lazily loaded fetch/stream internals the cold path pulled in.
  writeFileSync(
    join(outdir, "loaded-modules.mjs"),
    firstResponse("writeSync(2, '\\n' + JSON.stringify(process.moduleLoadList.filter((m) => /undici|webstreams/.test(m))));"),
  );
  const loaded = JSON.parse(
    runProcess([join(outdir, "loaded-modules.mjs")], env)
      .stderr.trim()
      .split("\n")
      .at(-1) as string,
  ) as string[];

  const bare: number[] = [];
  const bareCpu: number[] = [];
  const first: number[] = [];
  const firstCpu: number[] = [];
  const runners = {
    bare: () => bare.push(runProcess(["-e", "0"], env).ms),
    bareCpu: () => bareCpu.push(cpuOf(runProcess(["-e", reportCpu], env).stderr)),
    first: () => {
      const { ms, stderr } = runProcess([join(outdir, "first-response.mjs")], env);
      first.push(ms);
      firstCpu.push(cpuOf(stderr));
    },
  };
  // Warm the file cache for both, then interleave in rotating order so drifting load hits all alike.
  runProcess(["-e", "0"], env);
  runProcess([join(outdir, "first-response.mjs")], env);
  const order = [runners.bare, runners.first, runners.bareCpu];
  for (let i = 0; i < runs; i++) for (let k = 0; k < order.length; k++) (order[(i + k) % order.length] as () => void)();
  return {
    bundle,
    bareMs: median(bare),
    firstResponseMs: median(first),
    ratio: median(first) / median(bare),
    bareCpuMs: median(bareCpu),
    firstResponseCpuMs: median(firstCpu),
    cpuRatio: median(firstCpu) / median(bareCpu),
    nodeFetchLoaded: loaded.some((m) => m.includes("undici")),
    webStreamsLoaded: loaded.some((m) => m.includes("webstreams")),
  };
}

async function main() {
  mkdirSync(outRoot, { recursive: true });
  // Request log lines are still built for every request; only the terminal write is skipped.
  configureLog({ sink: () => {} });
  const { generatePrivateJwk } = await import("@enclave/core/keys");
  const jwk = generatePrivateJwk();
  const { d: _private, ...publicJwk } = jwk;
  const lambdaEnv = {
    PATH: process.env.PATH,
    LOG_LEVEL: "warn",
    STAGE: "bench",
    // A Neon URL that is never dialled: the measured route needs no database.
    AUTH_DATABASE_URL: "postgres://app@ep-bench-000000.us-east-1.aws.neon.tech/auth",
    AUTH_SIGNING_KEY: JSON.stringify(jwk),
    AUTH_PUBLIC_JWKS: JSON.stringify({ keys: [publicJwk] }),
  };
  const auth = await coldStart("auth", "/auth/.well-known/jwks.json", lambdaEnv);
  const routes = await measureAuth();
  const events = await measureEventLatency({ events: Number(process.env.BENCH_EVENTS ?? 200), burst: 0 });

  const results = { node: process.version, runs, lambda: { auth }, roundTrips: routes.roundTrips, warmRead: routes.warmRead, eventLatency: events.sequential };
  writeFileSync(join(outRoot, "results.json"), JSON.stringify(results, null, 2));

  const line = (label: string, value: string, target = "") => process.stdout.write(`${label.padEnd(52)} ${value.padStart(14)}  ${target}\n`);
  process.stdout.write(`\nEnclave benchmarks (node ${process.version}, ${runs} runs each, medians)\n\n`);
  line("auth API bundle: entry file", kb(auth.bundle.entryBytes), "target ≤ 250 KB");
  line("auth API bundle: loaded at cold start", kb(auth.bundle.coldBytes));
  line("auth API bundle: all files (incl. on-demand chunks)", kb(auth.bundle.totalBytes));
  line("bare `node -e 0`", `${auth.bareMs.toFixed(1)} ms`);
  line("auth bundle: process start → first response", `${auth.firstResponseMs.toFixed(1)} ms`);
  line("  ratio to bare node", `${auth.ratio.toFixed(2)}×`, "target ≤ 1.5×");
  line("  CPU time: bare node / auth bundle", `${auth.bareCpuMs.toFixed(1)} / ${auth.firstResponseCpuMs.toFixed(1)} ms`);
  line("  CPU ratio", `${auth.cpuRatio.toFixed(2)}×`);
  line("  Node's fetch classes (undici) loaded", auth.nodeFetchLoaded ? "yes" : "no", "expected: no");
  for (const [route, count] of Object.entries(routes.roundTrips))
    line(`round trips: ${route}`, String(count), route.startsWith("GET") ? "target ≤ 2" : "target ≤ 3");
  line(`warm GET /auth/me (${routes.warmRead.driver})`, `${routes.warmRead.routePerSecond.toFixed(0)} req/s`);
  line("same SQL directly on the driver", `${routes.warmRead.driverPerSecond.toFixed(0)} q/s`);
  line("  ratio", `${(routes.warmRead.ratio * 100).toFixed(0)}%`, "target ≥ 50%");
  line(`local event commit → effect, median (n=${events.sequential.n}, ${events.driver})`, `${events.sequential.medianMs.toFixed(2)} ms`);
  line("local event commit → effect, p99", `${events.sequential.p99Ms.toFixed(2)} ms`);
  process.stdout.write(`\nwritten to .bench/results.json\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
