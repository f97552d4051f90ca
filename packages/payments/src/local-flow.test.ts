/**
 * API.md's payment flows end to end in the local runtime: users registered on auth, payments
 * created on payments (the recipient looked up from auth in-process with a service token),
 * processed in the background through the local bus, declined, cancelled, listed, replayed.
 * Runs on PGlite under a temporary DATA_DIR, or on fresh PostgreSQL databases per service.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authContextFromConfig } from "@enclave/auth";
import { readAuthConfig } from "@enclave/auth/config";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { localService } from "@enclave/local/registry";
import { createLocalRuntime, type LocalRuntime } from "@enclave/local/runtime";
import { localServices } from "@enclave/local/services";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

let runtime: LocalRuntime;
let dataDir: string;
let databases: TestDatabase[] = [];

const auth = localServices.find((s) => s.module.manifest.name === "auth")!;
const payments = localServices.find((s) => s.module.manifest.name === "payments")!;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "enclave-payments-flow-"));
  databases = testServerUrl ? await Promise.all([createTestDatabase(["auth"]), createTestDatabase(["payments"])]) : [];
  runtime = await createLocalRuntime({
    env: {
      DATA_DIR: dataDir,
      LOCAL_CRONS: "0",
      SEED: "none",
      LOG_LEVEL: "error",
      BUS_RETRY_BASE_MS: "20",
      ...(databases.length > 0 ? { AUTH_DATABASE_URL: databases[0]!.url, PAYMENTS_DATABASE_URL: databases[1]!.url } : {}),
    },
    services: [
      // Auth configured from the environment as deployed: its verifier admits service tokens
      // addressed to it (SERVICE_PUBLIC_JWKS) on the routes open to services.
      localService({
        module: auth.module as never,
        context: (local) => authContextFromConfig(readAuthConfig(local.env), local.overrides),
      }),
      payments,
    ],
  });
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  await Promise.all(databases.map((d) => d.dispose()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function request(method: string, path: string, options: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
  const response = await runtime.app.request(path, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

let n = 0;
async function register(name: string) {
  const res = await request("POST", "/auth/register", {
    body: { email: `${name.toLowerCase()}-${++n}-${Date.now()}@example.com`, password: "correct horse battery", name },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.user.id as string, email: res.body.user.email as string, token: res.body.accessToken as string };
}

describe("payments in the local runtime", () => {
  test("create, replay, complete in the background, decline, cancel, list, history", async () => {
    const alice = await register("Alice");
    const bob = await register("Bob");

    const created = await request("POST", "/payments", {
      token: alice.token,
      body: { recipientEmail: bob.email, amount: "25.00" },
      headers: { "idempotency-key": "flow-1" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.payment).toMatchObject({ senderId: alice.id, recipientId: bob.id, amount: "25.00", status: "pending" });
    const replay = await request("POST", "/payments", {
      token: alice.token,
      body: { recipientEmail: bob.email, amount: "25.00" },
      headers: { "idempotency-key": "flow-1" },
    });
    expect(replay.body).toEqual(created.body);

    const declined = await request("POST", "/payments", {
      token: alice.token,
      body: { recipientEmail: bob.email, amount: "10000.50" },
      headers: { "idempotency-key": "flow-2" },
    });
    const later = await request("POST", "/payments", {
      token: alice.token,
      body: { recipientEmail: bob.email, amount: "1.00", type: "scheduled", scheduledFor: new Date(Date.now() + 86_400_000).toISOString() },
      headers: { "idempotency-key": "flow-3" },
    });
    await runtime.bus.drain();

    const completed = await request("GET", `/payments/${created.body.payment.id}`, { token: bob.token });
    expect(completed.body.payment).toMatchObject({ status: "completed", pspTransactionId: expect.stringMatching(/^sim_/) });
    const failed = await request("GET", `/payments/${declined.body.payment.id}`, { token: alice.token });
    expect(failed.body.payment).toMatchObject({ status: "failed", failureReason: "limit_exceeded" });
    expect((await request("GET", `/payments/${later.body.payment.id}`, { token: alice.token })).body.payment.status).toBe("pending");

    expect((await request("POST", `/payments/${later.body.payment.id}/cancel`, { token: bob.token })).status).toBe(403);
    expect((await request("POST", `/payments/${later.body.payment.id}/cancel`, { token: alice.token })).body.payment.status).toBe("cancelled");
    expect((await request("POST", `/payments/${created.body.payment.id}/cancel`, { token: alice.token })).status).toBe(409);

    const history = await request("GET", `/payments/${created.body.payment.id}/transactions`, { token: alice.token });
    expect(history.body.items.map((t: { status: string }) => t.status)).toEqual(["pending", "processing", "completed"]);
    const received = await request("GET", "/payments?role=recipient", { token: bob.token });
    expect(received.body.items.map((p: { id: string }) => p.id)).toEqual([later.body.payment.id, declined.body.payment.id, created.body.payment.id]);
    const failedOnly = await request("GET", "/payments?status=failed", { token: alice.token });
    expect(failedOnly.body.items.map((p: { id: string }) => p.id)).toEqual([declined.body.payment.id]);

    // Paying oneself and paying nobody.
    expect(
      (
        await request("POST", "/payments", {
          token: alice.token,
          body: { recipientEmail: alice.email, amount: "1.00" },
          headers: { "idempotency-key": "flow-4" },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await request("POST", "/payments", {
          token: alice.token,
          body: { recipientEmail: "nobody@example.com", amount: "1.00" },
          headers: { "idempotency-key": "flow-5" },
        })
      ).status,
    ).toBe(404);
  });

  test("the due cron runs in the runtime", async () => {
    expect(await runtime.runCron("payments", "due")).toMatchObject({ claimed: 0 });
    expect(await runtime.runCron("payments", "outbox-sweeper")).toMatchObject({ failed: 0 });
  });
});
