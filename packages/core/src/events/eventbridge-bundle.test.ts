import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { putEventsEndpoint } from "../testing/lambda";

/**
 * The publisher as bundled code, not as sources: esbuild's ESM output with code splitting turns
 * the lazily imported SDK into a chunk whose shape depends on which build of the package it
 * resolved (CommonJS: only `default`; ESM: named exports). Both must publish.
 */

const work = mkdtempSync(join(tmpdir(), "enclave-eventbridge-bundle-"));
const endpoint = putEventsEndpoint();
let url: string;
beforeAll(async () => {
  url = await endpoint.listen();
  writeFileSync(
    join(work, "entry.ts"),
    `import { eventBridgeBus } from ${JSON.stringify(join(import.meta.dirname, "eventbridge.ts"))};
const bus = eventBridgeBus({ busName: "bundle-bus", endpoint: process.env.ENDPOINT, region: "us-east-1", maxAttempts: 1 });
const detail = { id: "0193c1c8-0000-7000-8000-000000000001", type: "user.registered", version: 1, occurredAt: new Date().toISOString(), data: {}, metadata: { correlationId: "c", actor: null } };
const result = await bus.publish([{ source: "enclave.auth", detailType: "user.registered", detail }]);
process.stdout.write(JSON.stringify(result));
// The SDK keeps its connection alive: end like a Lambda invocation does.
process.exit(0);`,
  );
});
afterEach(() => {
  endpoint.entries.length = 0;
});
afterAll(async () => {
  await endpoint.close();
  rmSync(work, { recursive: true, force: true });
});

async function bundleAndPublish(mainFields: string[]): Promise<{ failed: unknown[] }> {
  const outdir = join(work, mainFields.join("-"));
  await build({
    entryPoints: [join(work, "entry.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    splitting: true,
    mainFields,
    outdir,
    outExtension: { ".js": ".mjs" },
    banner: { js: `import { createRequire } from "module"; const require = createRequire(import.meta.url);` },
    logLevel: "silent",
  });
  // Asynchronously: the endpoint answering the bundle lives in this process.
  const run = await promisify(execFile)(process.execPath, [join(outdir, "entry.mjs")], {
    env: { PATH: process.env.PATH ?? "", ENDPOINT: url },
    timeout: 30_000,
  });
  return JSON.parse(run.stdout) as { failed: unknown[] };
}

describe("the EventBridge publisher, bundled", () => {
  test("publishes when the SDK resolves to its CommonJS build (a chunk exporting only default)", async () => {
    expect(await bundleAndPublish(["main", "module"])).toEqual({ failed: [] });
    expect(endpoint.entries.map((e) => e.DetailType)).toEqual(["user.registered"]);
  }, 60_000);

  test("publishes when the SDK resolves to its ESM build, as SST builds functions", async () => {
    expect(await bundleAndPublish(["module", "main"])).toEqual({ failed: [] });
    expect(endpoint.entries.map((e) => e.EventBusName)).toEqual(["bundle-bus"]);
  }, 60_000);
});
