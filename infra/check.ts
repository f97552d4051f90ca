import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { generatePrivateJwk } from "@enclave/core/keys";
import { apiGatewayEvent } from "@enclave/core/testing/aws-events";
import ts from "typescript";
import { bundleFunction } from "./bundle";
import { functionEnvironment, publicJwks } from "./environment";
import { declaredJobs } from "./jobs";
import { entryFile, planDeployment, type ServiceDeployment } from "./plan";
import { installPlatform } from "./platform";
import { deployedServices } from "./services";

/**
 * `npm run infra:check`: everything about the cloud deployment that can be checked without an
 * AWS or Neon account, on a machine with only Node and the npm registry.
 *
 * 1. Installs the SST platform and its providers (aws, neon, random) offline: no Pulumi
 *    download (SST_SKIP_DEPENDENCY_CHECK), Bun from the npm package (SST_BUN_PATH), a
 *    temporary HOME so nothing lands in the user's home.
 * 2. Typechecks sst.config.ts and infra/ against the platform's types, so a wrong component
 *    argument fails here and not halfway through a deploy.
 * 3. Bundles every function the plan deploys exactly as the deployment does (ESM, minified,
 *    split, PGlite and node-postgres left out), loads each bundle in a directory with no
 *    node_modules, and answers an API Gateway payload 2.0 request with each API bundle using
 *    only the environment the infra gives that service.
 */

const root = resolve(import.meta.dirname, "..");
const started = performance.now();
const step = (message: string) => process.stdout.write(`infra:check ${message}\n`);
const fail = (message: string): never => {
  process.stderr.write(`infra:check FAILED: ${message}\n`);
  process.exit(1);
};

function installAndReport() {
  try {
    const providers = installPlatform();
    step(`platform installed: providers ${providers.map((p) => `${p.name}@${p.version}`).join(", ")}`);
  } catch (error) {
    fail((error as Error).message);
  }
}

/**
 * Two programs: sst.config.ts and the resource files against the SST platform's globals and
 * types; the plain modules (plan, services, this script, the tests) with the repository's
 * strict settings, which the platform's own sources would not pass.
 */
function typecheck(tsconfig: string, label: string) {
  const configPath = join(root, tsconfig);
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  if (config.error) fail(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath));
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const diagnostics = ts.getPreEmitDiagnostics(program);
  // The platform ships TypeScript sources type-checked with our compiler and types; a mismatch
  // there (e.g. two @types/node versions, anomalyco/sst#5130) is not a fault in our code.
  const inPlatform = (d: ts.Diagnostic) => d.file?.fileName.includes("/.sst/platform/") ?? false;
  const platform = diagnostics.filter(inPlatform);
  const ours = diagnostics.filter((d) => !inPlatform(d));
  const checked = parsed.fileNames.length;
  if (ours.length > 0) {
    const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => root, getNewLine: () => "\n" };
    fail(`${label} does not typecheck:\n${ts.formatDiagnostics(ours, host)}`);
  }
  step(`typecheck ${label}: ${checked} files, 0 errors` + (platform.length > 0 ? ` (${platform.length} diagnostics inside .sst/platform ignored)` : ""));
}

/** The environment the deployment gives a service, with throwaway keys and a Neon-shaped URL nothing connects to. */
function environmentFor(deployment: ServiceDeployment): Record<string, string> {
  const authKey = JSON.stringify(generatePrivateJwk());
  const serviceKey = JSON.stringify(generatePrivateJwk());
  const service = deployment.manifest.name;
  return functionEnvironment<string>(deployment, {
    app: "enclave",
    stage: "infra-check",
    busName: "enclave-infra-check-bus",
    databaseUrl: `postgres://${service}_app:x@ep-infra-check-000000-pooler.us-east-1.aws.neon.tech/${service}?sslmode=require`,
    authPublicJwks: publicJwks("AuthSigningKey", authKey),
    servicePublicJwks: publicJwks("ServiceSigningKey", serviceKey),
    secrets: { AuthSigningKey: authKey, ServiceSigningKey: serviceKey },
    apiUrl: "https://api.example.com",
    schemaVersion: "0000000000000000",
  });
}

const probe = `
const [bundle, kind, request] = process.argv.slice(2);
const module = await import(bundle);
if (typeof module.handler !== "function") throw new Error("no handler export");
if (kind === "api") {
  const context = { awsRequestId: "infra-check", getRemainingTimeInMillis: () => 10000 };
  const { method, path, event } = JSON.parse(request);
  const result = await module.handler(event, context);
  process.stdout.write(JSON.stringify({ method, path, statusCode: result.statusCode, body: result.body.slice(0, 200) }));
}
`;

async function bundles() {
  const plan = planDeployment(
    deployedServices,
    declaredJobs(
      root,
      deployedServices.map((d) => d.manifest.name),
    ),
  );
  const out = mkdtempSync(join(tmpdir(), "enclave-bundles-"));
  const node = join(root, "node_modules", ".bin", "node");
  const probeFile = join(out, "probe.mjs");
  writeFileSync(probeFile, probe);
  // Functions that share an entry (a service's jobs) share its bundle: each entry is built once.
  const byEntry = new Map(plan.functions.map((f) => [entryFile(f), f]));
  const entries = [
    ...[...byEntry].map(([entry, f]) => ({ ...f, resource: f.kind === "api" ? f.resource : `${f.service}Jobs`, entry })),
    { resource: "Migrate", kind: "migrate" as const, service: "", entry: "functions/migrate.ts" },
  ];
  const sizes: string[] = [];
  try {
    for (const fn of entries) {
      if (!existsSync(join(root, fn.entry))) fail(`${fn.resource}: entry point ${fn.entry} does not exist`);
      const outdir = join(out, fn.resource);
      mkdirSync(outdir);
      const { main, metafile } = await bundleFunction(join(root, fn.entry), outdir);
      // Job and migrate functions serve no HTTP: they must not carry (or build) a service's routes.
      const routes = Object.keys(metafile.inputs).filter((input) => input.endsWith("/routes.ts"));
      if (fn.kind !== "api" && routes.length > 0) fail(`${fn.resource}: the bundle of a function without an API carries HTTP routes (${routes.join(", ")})`);
      const total = readdirSync(outdir)
        .filter((file) => file.endsWith(".mjs"))
        .reduce((sum, file) => sum + statSync(join(outdir, file)).size, 0);
      const deployment = deployedServices.find((d) => d.manifest.name === fn.service);
      const env = { PATH: process.env.PATH ?? "", ...(deployment ? environmentFor(deployment) : {}), LOG_LEVEL: "error" };
      const prefix = deployment?.manifest.prefix ?? "";
      const requests = fn.kind === "api" ? [`${prefix}/openapi.json`, `${prefix}/no-such-route`] : [undefined];
      for (const path of requests) {
        const request = path ? JSON.stringify({ method: "GET", path, event: apiGatewayEvent({ method: "GET", path }) }) : "";
        const result = spawnSync(node, [probeFile, main, fn.kind, request], { cwd: outdir, env, encoding: "utf8" });
        if (result.status !== 0) fail(`${fn.resource}: the bundle does not load or answer (${relative(root, fn.entry)})\n${result.stderr}`);
        if (path) {
          const answer = JSON.parse(result.stdout) as { statusCode: number; body: string };
          // The OpenAPI document needs no database; an unknown path gets the API.md error
          // shape (404, or 401 where the service authenticates before routing), never a 500.
          const ok = path.endsWith("/openapi.json")
            ? answer.statusCode === 200 && answer.body.startsWith('{"openapi"')
            : [401, 404].includes(answer.statusCode) && answer.body.startsWith('{"error"');
          if (!ok) fail(`${fn.resource}: GET ${path} answered ${answer.statusCode} ${answer.body}`);
        }
      }
      sizes.push(`${fn.resource} ${Math.round(statSync(main).size / 1024)}/${Math.round(total / 1024)} KB`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  step(`bundles: ${entries.length} functions built, loaded without node_modules, API bundles answered payload 2.0 requests`);
  step(`  sizes (entry chunk / whole package, minified): ${sizes.join(", ")}`);
}

installAndReport();
typecheck("infra/tsconfig.json", "sst.config.ts + infra/ (SST platform types)");
typecheck("infra/tsconfig.node.json", "infra/ plan, services, tests and scripts");
await bundles();
step(`passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
