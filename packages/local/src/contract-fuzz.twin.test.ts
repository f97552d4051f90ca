/**
 * The contract fuzzer (packages/client) against the stage twin: every function's deployed package
 * in its own process behind the emulated API Gateway, PostgreSQL behind the Neon driver, events
 * through the captured rules. Fewer cases than against the local runtime (each request crosses
 * processes, and sign-ups hash at the deployed scrypt cost): FUZZ_TWIN_RUNS (default 25) per
 * operation and FUZZ_TWIN_SEQUENCES (default 3) stateful sequences. Skipped without the
 * PostgreSQL server binaries, as the twin's own tests are.
 */
import { contractOperations, leakPattern } from "@enclave/client/contract-fuzz.testing";
import { type ContractFuzzer, contractFuzzer } from "@enclave/client/contract-fuzzer.testing";
import { postgresBinaries } from "@enclave/stage/twin/postgres";
import { startTwin, type Twin } from "@enclave/stage/twin/twin";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { internalNames } from "./contract-fuzz.testing";
import { expectEscapedPathsAnswerAsDeployed } from "./escaped-paths.testing";
import { openApiDocuments } from "./openapi-documents";

const RUNS = Number(process.env.FUZZ_TWIN_RUNS || 25);
const SEQUENCES = Number(process.env.FUZZ_TWIN_SEQUENCES || 3);

const documents = await openApiDocuments();
const operations = contractOperations(documents);

describe.skipIf(!postgresBinaries())("the contract, fuzzed against the stage twin", () => {
  let twin: Twin;
  let fuzzer: ContractFuzzer;

  beforeAll(async () => {
    twin = await startTwin({ stage: "pr-31", topology: "per-service", timers: false, maxConcurrency: 2 });
    fuzzer = contractFuzzer({
      async send(method, path, init = {}) {
        const response = await fetch(`${twin.url}${path}`, { method, headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
        return { status: response.status, text: await response.text(), headers: response.headers };
      },
      settle: () => twin.idle(),
      admin: { email: "admin@enclave.dev", password: "enclave-admin-dev" },
      operations,
      access: new Map(documents.flatMap(({ specs }) => specs.map((spec) => [spec.operationId, spec.access] as const))),
      leaks: leakPattern(internalNames()),
    });
    await fuzzer.setup();
  }, 240_000);

  afterAll(async () => {
    await twin?.stop();
  }, 60_000);

  test.each(operations.map((op) => [`${op.method} ${op.path}`, op] as const))(`%s: ${RUNS} generated requests`, { timeout: 600_000 }, async (_, op) => {
    const statuses = await fuzzer.fuzz(op, RUNS);
    expect(
      [...statuses.keys()].some((status) => Number(status) < 300),
      JSON.stringify([...statuses]),
    ).toBe(true);
  });

  test("paths with escapes answer as the local runtime answers them", async () => {
    await expectEscapedPathsAnswerAsDeployed(twin.url);
  });

  test(`${SEQUENCES} sequences by owners, strangers and the administrator`, { timeout: 600_000 }, async () => {
    await fuzzer.sequences(SEQUENCES);
  });
});
