/**
 * Contract fuzzing against the local runtime, in-process (packages/client's contract fuzzer): for
 * every operation of every service's OpenAPI document, FUZZ_RUNS (default 200) requests generated
 * from its schemas, each answer checked against the contract; then FUZZ_SEQUENCES (default 25)
 * stateful sequences by owners, strangers and the administrator. Runs on PGlite, or on a fresh
 * PostgreSQL database when TEST_DATABASE_URL is set.
 */
import { authContextFromConfig, authService } from "@enclave/auth";
import { readAuthConfig } from "@enclave/auth/config";
import { contractOperations, leakPattern } from "@enclave/client/contract-fuzz.testing";
import { type ContractFuzzer, contractFuzzer } from "@enclave/client/contract-fuzzer.testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { internalNames } from "./contract-fuzz.testing";
import { openApiDocuments } from "./openapi-documents";
import { localService } from "./registry";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { testEnvironment } from "./runtime.testing";
import { localServices } from "./services";

/** Cases per operation (CI runs the default; raise it for a longer search). */
const RUNS = Number(process.env.FUZZ_RUNS || 200);
/** Stateful sequences of calls. */
const SEQUENCES = Number(process.env.FUZZ_SEQUENCES || 25);

const documents = await openApiDocuments();
const operations = contractOperations(documents);

let environment: Awaited<ReturnType<typeof testEnvironment>>;
let runtime: LocalRuntime;
let fuzzer: ContractFuzzer;
const tally = new Map<string, Map<string, number>>();

beforeAll(async () => {
  environment = await testEnvironment({ SEED: "development", BUS_RETRY_BASE_MS: "20" });
  // scrypt at the deployed cost takes half a second a hash: the contract is the same at a low cost.
  const services = localServices.map((service) =>
    service.module.manifest.name === "auth"
      ? localService({ module: authService, context: (local) => authContextFromConfig(readAuthConfig(local.env), { ...local.overrides, passwordCost: 10 }) })
      : service,
  );
  runtime = await createLocalRuntime({ env: environment.env, services });
  fuzzer = contractFuzzer({
    async send(method, path, init = {}) {
      const response = await runtime.app.request(path, { method, headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
      return { status: response.status, text: await response.text(), headers: response.headers };
    },
    settle: () => runtime.bus.drain(),
    admin: { email: "admin@enclave.dev", password: "enclave-admin-dev" },
    operations,
    access: new Map(documents.flatMap(({ specs }) => specs.map((spec) => [spec.operationId, spec.access] as const))),
    leaks: leakPattern(internalNames()),
  });
  await fuzzer.setup();
}, 120_000);

afterAll(async () => {
  if (process.env.FUZZ_REPORT) for (const [operation, statuses] of tally) console.log(operation, JSON.stringify(Object.fromEntries(statuses)));
  await runtime?.close();
  await environment?.dispose();
});

describe.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))("%s", (name, op) => {
  test(`${RUNS} generated requests answer as the contract says`, { timeout: 600_000 }, async () => {
    const statuses = await fuzzer.fuzz(op, RUNS);
    tally.set(name, statuses);
    // Each operation was reached past its guards at least once: the cases are not all refusals.
    expect(
      [...statuses.keys()].some((status) => Number(status) < 300),
      JSON.stringify([...statuses]),
    ).toBe(true);
  });
});

test(`${SEQUENCES} sequences of calls by owners, strangers and the administrator keep every promise`, { timeout: 600_000 }, async () => {
  await fuzzer.sequences(SEQUENCES);
  expect(runtime.bus.deadLetters()).toEqual([]);
});
