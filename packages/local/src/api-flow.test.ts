import { createEnclaveClient } from "@enclave/client";
import { runApiFlow } from "@enclave/client/api-flow.testing";
import { afterAll, beforeAll, expect, test } from "vitest";
import { expectEscapedPathsAnswerAsDeployed } from "./escaped-paths.testing";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { serveRuntime, testEnvironment } from "./runtime.testing";

/** `npm run dev` as a user runs it (every service, the development seed, one port), called over HTTP with the typed client. */
let env: Awaited<ReturnType<typeof testEnvironment>>;
let runtime: LocalRuntime;
let server: Awaited<ReturnType<typeof serveRuntime>>;

beforeAll(async () => {
  env = await testEnvironment({ SEED: "development", BUS_RETRY_BASE_MS: "20" });
  runtime = await createLocalRuntime({ env: env.env });
  server = await serveRuntime(runtime);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await runtime?.close();
  await env?.dispose();
});

test("every route of API.md, through the typed client, against the local runtime", async () => {
  await runApiFlow(createEnclaveClient(server.base), {
    baseUrl: server.base,
    admin: { email: "admin@enclave.dev", password: "enclave-admin-dev" },
    settle: () => runtime.bus.drain(),
  });
  expect(runtime.bus.deadLetters()).toEqual([]);
}, 120_000);

test("paths with escapes answer as deployed: an encoded slash separates, a double escape loses a level", async () => {
  await expectEscapedPathsAnswerAsDeployed(server.base);
});
