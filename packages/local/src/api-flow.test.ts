import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEnclaveClient } from "@enclave/client";
import { runApiFlow } from "@enclave/client/api-flow.testing";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createLocalRuntime, type LocalRuntime } from "./runtime";

/** `npm run dev` as a user runs it (every service, the development seed, one port), called over HTTP with the typed client. */
let runtime: LocalRuntime;
let server: ReturnType<typeof serve>;
let baseUrl: string;
let dataDir: string;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "enclave-api-flow-"));
  const env: Record<string, string> = { DATA_DIR: dataDir, LOCAL_CRONS: "0", SEED: "development", LOG_LEVEL: "error", BUS_RETRY_BASE_MS: "20" };
  if (testServerUrl) {
    for (const service of ["auth", "profile", "payments", "admin"]) {
      const database = await createTestDatabase([]);
      databases.push(database);
      env[`${service.toUpperCase()}_DATABASE_URL`] = database.url;
    }
  }
  runtime = await createLocalRuntime({ env });
  server = serve({ fetch: runtime.app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await runtime?.close();
  for (const database of databases) await database.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

test("every route of API.md, through the typed client, against the local runtime", async () => {
  await runApiFlow(createEnclaveClient(baseUrl), {
    baseUrl,
    admin: { email: "admin@enclave.dev", password: "enclave-admin-dev" },
    settle: () => runtime.bus.drain(),
  });
  expect(runtime.bus.deadLetters()).toEqual([]);
}, 120_000);
