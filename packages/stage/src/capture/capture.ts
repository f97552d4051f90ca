import { spawn } from "node:child_process";
import { createCipheriv } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { buildFunction, type NodeBuildProperties } from "../../../../infra/bundle";
import { ensurePlatform } from "../../../../infra/platform";
import type { CaptureDocument, CapturedResource } from "./mocks";

/**
 * The stage as `sst.config.ts` declares it, captured offline. The program is bundled the way
 * the SST CLI bundles it (its globals defined, the platform's shim injected, the platform's
 * packages resolved from `.sst/platform/node_modules`) and run under Pulumi's mocks in a
 * process of its own, with the secrets and deployment settings a deploy would have. This
 * process plays the CLI's part on the RPC channel: it builds every function exactly as
 * `sst deploy` does (infra/bundle.ts) and answers the few other calls components make.
 */

export const root = resolve(import.meta.dirname, "../../../..");
const platform = join(root, ".sst/platform");

export interface CaptureOptions {
  stage: string;
  /** Where builds, artifacts and the capture go (SST's `.sst` work directory for this run). */
  work: string;
  /** `SST_SECRET_<Name>` values. */
  secrets: Record<string, string>;
  /** The deployment settings of the machine that deploys (ENCLAVE_DB_TOPOLOGY, NEON_PROJECT_ID, ...). */
  settings: Record<string, string>;
  /** Answers `aws.lambda.Invocation`: the function's response payload (a JSON string). */
  invoke: (request: { invocation: string; function: CapturedResource; input: unknown }) => Promise<string>;
  /** The Neon branch owner's password the fake Neon API reports (the twin's local administrator). */
  neonOwnerPassword?: string;
}

export interface Capture extends CaptureDocument {
  /** `Runtime.Build` requests, by function id, with where each build went. */
  builds: Record<
    string,
    {
      handler: string;
      out: string;
      properties: NodeBuildProperties;
      copyFiles: { from: string; to: string; isDir: boolean }[];
      /** Variables its links seal into its package (`resource.enc`). */
      sealed: string[];
    }
  >;
}

const entrySource = (configFile: string, mocksFile: string) => `
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as random from "@pulumi/random";
import * as neon from "@sst-provider/neon";
import * as sst from "./src/components/index";
import { run } from "./src/auto/run";
import config from ${JSON.stringify(configFile)};
import { runUnderMocks } from ${JSON.stringify(mocksFile)};
// Set here, in the entry: the platform is "sideEffects": false, so a module that only sets
// globals would be dropped from the bundle.
globalThis.aws = aws;
globalThis.random = random;
globalThis.neon = neon;
globalThis.sst = sst;
await runUnderMocks({ pulumi, run, config });
`;

/** The config's `app()` for a stage, evaluated first as the CLI does: it becomes `$app`. */
export async function appSettings(stage: string): Promise<AppSettings> {
  const globals = globalThis as { $config?: (config: unknown) => unknown };
  globals.$config ??= (config) => config;
  const config = (await import(join(root, "sst.config.ts"))).default as { app(input: { stage: string }): Omit<AppSettings, "stage"> };
  return { ...config.app({ stage }), stage };
}

export interface AppSettings {
  name: string;
  stage: string;
  removal?: string;
  protect?: boolean;
  home: string;
  providers?: Record<string, unknown>;
}

/** Bundles sst.config.ts with the platform into `.sst/platform/`, as the CLI does before a deploy. */
async function bundleProgram(work: string, app: AppSettings): Promise<string> {
  const entry = join(platform, `twin-entry-${process.pid}.ts`);
  const outfile = join(platform, `twin-program-${process.pid}.mjs`);
  writeFileSync(entry, entrySource(join(root, "sst.config.ts"), join(import.meta.dirname, "mocks.ts")));
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      // The platform's packages stay external so that the program and the components share
      // one @pulumi/pulumi (its mocks and stack state are module globals).
      plugins: [
        {
          name: "platform-packages",
          setup(b) {
            b.onResolve({ filter: /^[^./]/ }, (args) => {
              if (args.path.startsWith("@enclave/") || args.path.startsWith("node:")) return undefined;
              const name = args.path.startsWith("@") ? args.path.split("/").slice(0, 2).join("/") : args.path.split("/")[0]!;
              return existsSync(join(platform, "node_modules", name)) ? { path: args.path, external: true } : undefined;
            });
          },
        },
      ],
      inject: [join(platform, "src/shim/run.js")],
      define: {
        $app: JSON.stringify({ removal: "retain", protect: false, providers: {}, ...app }),
        $cli: JSON.stringify({ command: "deploy", dev: false, paths: { home: work, root, work, platform }, state: { version: {} } }),
        $dev: "false",
      },
      banner: { js: `import { createRequire as topLevelCreateRequire } from "module"; const require = topLevelCreateRequire(import.meta.url);` },
      logLevel: "silent",
    });
  } finally {
    rmSync(entry, { force: true });
  }
  mkdirSync(work, { recursive: true });
  return outfile;
}

/**
 * What the CLI adds to every build that has an encryption key: the function's links as JSON,
 * sealed with AES-256-GCM under that key with a zero nonce (the tag appended), in
 * `resource.enc` beside the handler, so the package carries them and the configuration only the
 * key (SST_KEY).
 */
export function writeSealedLinks(out: string, keyBase64: string, links: unknown): void {
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(keyBase64, "base64"), Buffer.alloc(12));
  const sealed = Buffer.concat([cipher.update(JSON.stringify(links), "utf8"), cipher.final(), cipher.getAuthTag()]);
  writeFileSync(join(out, "resource.enc"), sealed);
}

interface RpcHandlers {
  [method: string]: (params: Record<string, unknown>) => Promise<unknown>;
}

async function startRpc(handlers: RpcHandlers): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", async () => {
      let answer: { result?: unknown; error?: string };
      try {
        const { method, params } = JSON.parse(text) as { method: string; params: Record<string, unknown>[] };
        const handler = handlers[method];
        answer = handler ? { result: await handler(params[0] ?? {}) } : { error: `rpc: can't find method ${method}` };
      } catch (error) {
        answer = { error: (error as Error).message };
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer ?? { result: null }));
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Runs the real sst.config.ts for `stage` under mocks and returns every resource it declares. */
export async function captureStage(options: CaptureOptions): Promise<Capture> {
  ensurePlatform();
  const work = resolve(options.work);
  const app = await appSettings(options.stage);
  const program = await bundleProgram(work, app);
  const builds: Capture["builds"] = {};
  const { server, url } = await startRpc({
    "Runtime.Build": async (input) => {
      const functionId = String(input.functionID);
      const out = join(work, "artifacts", `${functionId}-src`);
      rmSync(out, { recursive: true, force: true });
      const properties = (input.properties ?? {}) as NodeBuildProperties;
      try {
        const built = await buildFunction({ root, handler: String(input.handler), properties, out });
        if (input.encryptionKey) writeSealedLinks(out, String(input.encryptionKey), input.links ?? {});
        builds[functionId] = {
          handler: String(input.handler),
          out,
          properties,
          copyFiles: (input.copyFiles ?? []) as Capture["builds"][string]["copyFiles"],
          sealed: Object.values((input.links ?? {}) as Record<string, { variable?: unknown }>)
            .flatMap((link) => (typeof link?.variable === "string" ? [link.variable] : []))
            .sort(),
        };
        return { handler: built.handler, out, errors: [], sourcemaps: [] };
      } catch (error) {
        return { handler: "", out, errors: [(error as Error).message], sourcemaps: [] };
      }
    },
    "Provider.Aws.Bootstrap": async (input) => ({
      asset: `sst-asset-twin-${String(input.region)}`,
      assetEcrRegistryId: "123456789012",
      assetEcrUrl: `123456789012.dkr.ecr.${String(input.region)}.amazonaws.com/sst-asset`,
      state: `sst-state-twin-${String(input.region)}`,
      appsyncHttp: "",
      appsyncRealtime: "",
    }),
    "Provider.Aws.Appsync": async () => ({ http: "", realtime: "" }),
    "Runtime.AddTarget": async () => ({}),
    "Twin.Invoke": async (params) => options.invoke(params as unknown as Parameters<CaptureOptions["invoke"]>[0]),
  });
  const out = join(work, "capture.json");
  rmSync(out, { force: true });
  try {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: work,
      SST_SERVER: url,
      TWIN_CAPTURE_STAGE: options.stage,
      TWIN_CAPTURE_OUT: out,
      ...(options.neonOwnerPassword ? { TWIN_NEON_OWNER_PASSWORD: options.neonOwnerPassword } : {}),
      ...options.settings,
      ...Object.fromEntries(Object.entries(options.secrets).map(([name, value]) => [`SST_SECRET_${name}`, value])),
    };
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, [program], { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      child.on("close", (code) => done({ code, stderr }));
    });
    if (!existsSync(out)) throw new Error(`the SST program did not finish (exit ${code}):\n${stderr.trim()}`);
    const document = JSON.parse(readFileSync(out, "utf8")) as CaptureDocument;
    return { ...document, builds };
  } finally {
    server.close();
    rmSync(program, { force: true });
  }
}
