import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import type { FunctionSpec, InvokeOutcome, TwinNetwork } from "../contracts";
import { type DeployedFunction, type DeployOptions, deployFunction } from "./deploy";

const codeDir = mkdtempSync(join(tmpdir(), "enclave-lambda-"));
const network: TwinNetwork = { region: "eu-west-1", neonProxyPort: 9 };
const deployed: DeployedFunction[] = [];

const files: Record<string, string> = {
  "echo.mjs": `
    export const handler = async (event, context) => ({
      event,
      pid: process.pid,
      context: { ...context, remaining: context.getRemainingTimeInMillis() },
      returned: { when: new Date(0), gone: undefined, map: new Map([[1, 2]]), nan: NaN, list: [undefined, 1] },
    });`,
  "env.mjs": `export const handler = async () => ({ env: process.env, cwd: process.cwd() });`,
  "functions/package.json": `{"type":"module"}`,
  "functions/job.js": `export const handler = async () => "esm .js: " + typeof require;`,
  "legacy.js": `exports.handler = async () => "commonjs .js: " + typeof require;`,
  "worker.cjs": `module.exports.handler = async () => "commonjs .cjs";`,
  "uncaught.mjs": `export const handler = async () => { setTimeout(() => { throw new RangeError("out of range"); }, 0); await new Promise((r) => setTimeout(r, 200)); return 1; };`,
  "nested.mjs": `export const api = { routes: { handler: async () => "nested" } };`,
  "fail.mjs": `
    class PaymentDeclined extends Error { name = "PaymentDeclined"; }
    export const handler = async (event) => {
      if (event.plain) throw "just a string";
      if (event.cyclic) { const a = {}; a.self = a; return a; }
      if (event.ok) return process.pid;
      throw new PaymentDeclined("card 4242 declined");
    };`,
  "slow.mjs": `export const handler = async (event) => { await new Promise((r) => setTimeout(r, event.ms)); return process.pid; };`,
  "broken.mjs": `throw new TypeError("DATABASE_URL is not set"); export const handler = async () => 1;`,
  "notexported.mjs": `export const other = async () => 1;`,
  "rejects.mjs": `
    export const handler = async (event) => {
      if (event.reject) { Promise.reject(new Error("lost promise")); await new Promise((r) => setTimeout(r, 200)); }
      return process.pid;
    };`,
  "logs.mjs": `export const handler = async (event) => { console.log("hello " + event.name); console.error("careful " + event.name); return 1; };`,
};

function spec(handler: string, overrides: Partial<FunctionSpec> = {}): FunctionSpec {
  return { name: "twin-test-fn", codeDir, handler, environment: { APP_SETTING: "on" }, timeoutSeconds: 3, memoryMb: 256, ...overrides };
}

function deploy(s: FunctionSpec, options: DeployOptions = {}, net: TwinNetwork = network): DeployedFunction {
  const fn = deployFunction(s, net, options);
  deployed.push(fn);
  return fn;
}

function ok(outcome: InvokeOutcome): unknown {
  if (!outcome.ok) throw new Error(`invocation failed: ${outcome.errorType}: ${outcome.errorMessage}`);
  return outcome.result;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(() => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(codeDir, name, ".."), { recursive: true });
    writeFileSync(join(codeDir, name), text);
  }
});
afterEach(async () => {
  await Promise.all(deployed.splice(0).map((fn) => fn.close()));
});
afterAll(() => rmSync(codeDir, { recursive: true, force: true }));

describe("deployFunction", () => {
  test("the function sees its own variables and Lambda's, nothing of the emulator's environment", async () => {
    process.env.TWIN_LEAK_CANARY = "must not reach the function";
    try {
      const fn = deploy(spec("env.handler"), {}, { ...network, eventBridgeEndpoint: "http://127.0.0.1:4010" });
      const { env, cwd } = ok(await fn.invoke({})) as { env: Record<string, string>; cwd: string };
      expect(Object.keys(env).sort()).toEqual(
        [
          "APP_SETTING",
          "AWS_ACCESS_KEY_ID",
          "AWS_DEFAULT_REGION",
          "AWS_ENDPOINT_URL_EVENTBRIDGE",
          "AWS_EXECUTION_ENV",
          "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
          "AWS_LAMBDA_FUNCTION_NAME",
          "AWS_LAMBDA_FUNCTION_VERSION",
          "AWS_LAMBDA_INITIALIZATION_TYPE",
          "AWS_LAMBDA_LOG_GROUP_NAME",
          "AWS_LAMBDA_LOG_STREAM_NAME",
          "AWS_REGION",
          "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN",
          "LAMBDA_RUNTIME_DIR",
          "LAMBDA_TASK_ROOT",
          "LANG",
          "NODE_PATH",
          "PATH",
          "TZ",
          "_HANDLER",
        ].sort(),
      );
      expect(env).toMatchObject({
        APP_SETTING: "on",
        AWS_REGION: "eu-west-1",
        AWS_DEFAULT_REGION: "eu-west-1",
        AWS_LAMBDA_FUNCTION_NAME: "twin-test-fn",
        AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256",
        AWS_LAMBDA_LOG_GROUP_NAME: "/aws/lambda/twin-test-fn",
        AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
        AWS_ENDPOINT_URL_EVENTBRIDGE: "http://127.0.0.1:4010",
        LAMBDA_TASK_ROOT: codeDir,
        TZ: ":UTC",
        _HANDLER: "env.handler",
      });
      expect(cwd).toBe(codeDir);
      expect(JSON.stringify(env)).not.toContain("must not reach");
    } finally {
      delete process.env.TWIN_LEAK_CANARY;
    }
  });

  test("without an EventBridge endpoint the SDK's endpoint variable is not set", async () => {
    const { env } = ok(await deploy(spec("env.handler")).invoke({})) as { env: Record<string, string> };
    expect(env).not.toHaveProperty("AWS_ENDPOINT_URL_EVENTBRIDGE");
  });

  test("handlers resolve as Lambda resolves them: .mjs, .js as ESM or CommonJS by package.json, nested exports", async () => {
    expect(ok(await deploy(spec("functions/job.handler")).invoke({}))).toBe("esm .js: undefined");
    expect(ok(await deploy(spec("legacy.handler")).invoke({}))).toBe("commonjs .js: function");
    expect(ok(await deploy(spec("worker.handler")).invoke({}))).toBe("commonjs .cjs");
    expect(ok(await deploy(spec("nested.api.routes.handler")).invoke({}))).toBe("nested");
  });

  test("events and results round-trip through JSON; the context is Lambda's", async () => {
    const fn = deploy(spec("echo.handler"));
    const outcome = await fn.invoke({ at: new Date(Date.UTC(2026, 10, 5)), skip: undefined, n: 1 });
    expect(outcome).toMatchObject({ ok: true, coldStart: true });
    const result = ok(outcome) as { event: unknown; returned: unknown; context: Record<string, unknown> };
    expect(result.event).toEqual({ at: "2026-11-05T00:00:00.000Z", n: 1 });
    expect(result.returned).toEqual({ when: "1970-01-01T00:00:00.000Z", map: {}, nan: null, list: [null, 1] });
    expect(result.context).toMatchObject({
      functionName: "twin-test-fn",
      functionVersion: "$LATEST",
      memoryLimitInMB: "256",
      invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:twin-test-fn",
      logGroupName: "/aws/lambda/twin-test-fn",
      callbackWaitsForEmptyEventLoop: true,
    });
    expect(result.context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.context.logStreamName).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    expect(result.context.remaining).toBeGreaterThan(2000);
    expect(result.context.remaining).toBeLessThanOrEqual(3000);

    const again = await fn.invoke({});
    expect(again).toMatchObject({ ok: true, coldStart: false });
    expect((ok(again) as { pid: number }).pid).toBe((result as unknown as { pid: number }).pid);
  });

  test("a thrown error is the outcome and the instance stays warm", async () => {
    const lines: string[] = [];
    const fn = deploy(spec("fail.handler"), { onLog: (_name, line) => lines.push(line) });
    const thrown = await fn.invoke({});
    expect(thrown).toMatchObject({ ok: false, errorType: "PaymentDeclined", errorMessage: "card 4242 declined", coldStart: true });
    // As in CloudWatch: the runtime logs the error with its stack.
    await until(() => lines.some((line) => line.includes("\tERROR\tInvoke Error\t")));
    expect(lines.find((line) => line.includes("Invoke Error"))).toMatch(/"errorType":"PaymentDeclined".*"stack":\["PaymentDeclined: card 4242 declined"/);
    expect(await fn.invoke({ plain: true })).toMatchObject({ ok: false, errorType: "string", errorMessage: "just a string", coldStart: false });
    expect(await fn.invoke({ cyclic: true })).toMatchObject({ ok: false, errorType: "TypeError", coldStart: false });
    expect(await fn.invoke({ ok: true })).toMatchObject({ ok: true, coldStart: false });
    expect(fn.instances).toBe(1);
  });

  test("a timeout kills the instance and the next invocation is a cold start", async () => {
    const fn = deploy(spec("slow.handler", { timeoutSeconds: 0.4 }), { maxConcurrency: 1 });
    const first = ok(await fn.invoke({ ms: 0 })) as number;
    const timedOut = await fn.invoke({ ms: 10_000 });
    expect(timedOut).toMatchObject({
      ok: false,
      timedOut: true,
      errorType: "Sandbox.Timedout",
      errorMessage: "Task timed out after 0.40 seconds",
      coldStart: false,
    });
    expect(timedOut.durationMs).toBeGreaterThanOrEqual(390);
    expect(timedOut.durationMs).toBeLessThan(1500);
    await until(() => !alive(first));
    const next = await fn.invoke({ ms: 0 });
    expect(next).toMatchObject({ ok: true, coldStart: true });
    expect(ok(next)).not.toBe(first);
  });

  test("an init error fails every invocation and the instance is replaced each time", async () => {
    const fn = deploy(spec("broken.handler"));
    const first = await fn.invoke({});
    expect(first).toMatchObject({ ok: false, errorType: "TypeError", errorMessage: "DATABASE_URL is not set", coldStart: true });
    expect(await fn.invoke({})).toMatchObject({ ok: false, errorType: "TypeError", coldStart: true });
    await until(() => fn.instances === 0);

    expect(await deploy(spec("missing/module.handler")).invoke({})).toMatchObject({
      ok: false,
      errorType: "Runtime.ImportModuleError",
      errorMessage: "Error: Cannot find module 'missing/module'",
    });
    expect(await deploy(spec("notexported.handler")).invoke({})).toMatchObject({
      ok: false,
      errorType: "Runtime.HandlerNotFound",
      errorMessage: "notexported.handler is undefined or not exported",
    });
  });

  test("an unhandled rejection or an uncaught exception ends the instance", async () => {
    const fn = deploy(spec("rejects.handler"), { maxConcurrency: 1 });
    const pid = ok(await fn.invoke({})) as number;
    expect(await fn.invoke({ reject: true })).toMatchObject({
      ok: false,
      errorType: "Runtime.UnhandledPromiseRejection",
      errorMessage: "Error: lost promise",
      coldStart: false,
    });
    const next = await fn.invoke({});
    expect(next).toMatchObject({ ok: true, coldStart: true });
    expect(ok(next)).not.toBe(pid);
    expect(alive(pid)).toBe(false);

    const uncaught = deploy(spec("uncaught.handler"));
    expect(await uncaught.invoke({})).toMatchObject({ ok: false, errorType: "RangeError", errorMessage: "out of range" });
    await until(() => uncaught.instances === 0);
  });

  test("at most maxConcurrency instances; the other invocations wait for a warm one", async () => {
    const fn = deploy(spec("slow.handler"), { maxConcurrency: 2 });
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => fn.invoke({ ms: 300 })));
    const elapsed = Date.now() - started;
    const pids = new Set(outcomes.map(ok));
    expect(pids.size).toBe(2);
    expect(outcomes.filter((o) => o.coldStart)).toHaveLength(2);
    expect(fn.instances).toBe(2);
    // Five invocations of 300 ms on two instances take three rounds.
    expect(elapsed).toBeGreaterThanOrEqual(890);
  });

  test("stdout and stderr lines reach onLog", async () => {
    const lines: string[] = [];
    const fn = deploy(spec("logs.handler"), { onLog: (name, line) => lines.push(`${name}: ${line}`) });
    ok(await fn.invoke({ name: "ada" }));
    await until(() => lines.length >= 2);
    expect(lines).toEqual(expect.arrayContaining(["twin-test-fn: hello ada", "twin-test-fn: careful ada"]));
  });

  test("hang stops every environment, those started meanwhile too, until resume; an invocation meanwhile waits or times out", async () => {
    const fn = deploy(spec("slow.handler", { timeoutSeconds: 1 }), { maxConcurrency: 2 });
    const warm = ok(await fn.invoke({ ms: 0 })) as number;
    fn.hang();
    let answered = false;
    const waiting = fn.invoke({ ms: 0 }).then((outcome) => {
      answered = true;
      return outcome;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    fn.resume();
    expect(ok(await waiting)).toBe(warm);
    // Hung past its timeout: the environment is ended, as Lambda ends it; a new one (not hung) answers.
    fn.hang();
    const [timedOut, started] = await Promise.all([fn.invoke({ ms: 0 }), fn.invoke({ ms: 0 })]);
    expect([timedOut, started].map((o) => [o.ok, o.ok ? undefined : o.errorType])).toEqual([
      [false, "Sandbox.Timedout"],
      [false, "Sandbox.Timedout"],
    ]);
    fn.resume();
    expect(await fn.invoke({ ms: 0 })).toMatchObject({ ok: true, coldStart: true });
  });

  test("close kills every instance and refuses further invocations", async () => {
    const fn = deploy(spec("slow.handler"), { maxConcurrency: 2 });
    const pids = (await Promise.all([fn.invoke({ ms: 50 }), fn.invoke({ ms: 50 })])).map(ok) as number[];
    const pending = expect(fn.invoke({ ms: 5000 })).rejects.toThrow(/closed during the invocation/);
    await fn.close();
    await pending;
    expect(fn.instances).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    await expect(fn.invoke({})).rejects.toThrow(/closed/);
  });
});

describe("EventBridge from a bundled function", () => {
  let server: Server;
  const received: { target: string | undefined; body: unknown }[] = [];
  let endpoint: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => (text += chunk));
      req.on("end", () => {
        received.push({ target: req.headers["x-amz-target"] as string | undefined, body: JSON.parse(text) });
        res.writeHead(200, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify({ FailedEntryCount: 0, Entries: [{ EventId: "ev-1" }] }));
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // The SDK client as the application makes it: no endpoint, region from the environment.
    await build({
      stdin: {
        contents: `
          import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
          export const handler = async () => {
            const client = new EventBridgeClient({ region: process.env.AWS_REGION });
            const out = await client.send(new PutEventsCommand({ Entries: [{ Source: "enclave.test", DetailType: "ping", Detail: "{}", EventBusName: "bus" }] }));
            return out.Entries;
          };`,
        resolveDir: import.meta.dirname,
        loader: "ts",
      },
      outfile: join(codeDir, "bus.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node24",
      banner: { js: `import { createRequire as topLevelCreateRequire } from "module"; const require = topLevelCreateRequire(import.meta.url);` },
      logLevel: "error",
    });
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  test("the SDK sends PutEvents to the twin's endpoint (AWS_ENDPOINT_URL_EVENTBRIDGE)", async () => {
    const fn = deploy(spec("bus.handler", { memoryMb: 512 }), {}, { ...network, eventBridgeEndpoint: endpoint });
    expect(ok(await fn.invoke({}))).toEqual([{ EventId: "ev-1" }]);
    expect(received).toEqual([
      { target: "AWSEvents.PutEvents", body: { Entries: [{ Source: "enclave.test", DetailType: "ping", Detail: "{}", EventBusName: "bus" }] } },
    ]);
  });
});
