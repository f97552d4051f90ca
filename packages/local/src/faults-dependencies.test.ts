/**
 * A dependency goes away while the system serves traffic, then comes back:
 * - the database (PostgreSQL behind a TCP proxy the test cuts, and backends terminated by the
 *   server): every request answers (none hangs), a 503 `unavailable` in the API.md shape or a
 *   success, health answers 503, and once the database is back everything works again without a
 *   restart;
 * - auth, as payments reaches it (refused, hanging, failing): payments answers 503 and creates
 *   nothing, and recovers by itself; the idempotency key of a refused request is still free.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { paymentsContextFromConfig } from "@enclave/payments";
import { readPaymentsConfig } from "@enclave/payments/config";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Answer, call, rows, TcpProxy } from "./faults.testing";
import { localService } from "./registry";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { serveRuntime, testEnvironment } from "./runtime.testing";
import { localServices } from "./services";

const SLOW = 240_000;
const password = "correct horse battery";
/** Far beyond any timeout of the services (connect 5 s, health 3 s, auth 2 × AUTH_TIMEOUT_MS): a request still open then hangs. */
const HANG_GUARD_MS = 60_000;
/** The runtime's DB_QUERY_TIMEOUT_MS here: how long a statement may go unanswered. */
const QUERY_TIMEOUT_MS = 3_000;

const unavailable = { error: { code: "unavailable", message: expect.any(String) } };

interface Client {
  email: string;
  token: string;
  id: string;
}

/** A request that must settle by itself; a hang fails the test with the request named. */
async function settles(base: string, label: string, method: string, path: string, options: Parameters<typeof call>[3] = {}): Promise<Answer> {
  const answer = await call(base, method, path, { ...options, signal: AbortSignal.timeout(HANG_GUARD_MS) });
  if (!answer) throw new Error(`${label}: no answer within ${HANG_GUARD_MS} ms (a hang) or the connection failed`);
  return answer;
}

describe.skipIf(!testServerUrl)("the database goes away mid-traffic (PostgreSQL)", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let proxy: TcpProxy;
  let runtime: LocalRuntime;
  let server: Awaited<ReturnType<typeof serveRuntime>>;
  let dataDir: string;
  let base: string;
  const users: Client[] = [];
  const sentFigures = { sent: 0, unavailable: 0, ok: 0 };

  beforeAll(async () => {
    database = await createTestDatabase([]);
    const target = new URL(database.url);
    proxy = await new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }).start();
    target.host = `127.0.0.1:${proxy.port}`;
    dataDir = mkdtempSync(join(tmpdir(), "enclave-db-away-"));
    runtime = await createLocalRuntime({
      env: {
        DATA_DIR: dataDir,
        DATABASE_URL: target.toString(),
        LOCAL_CRONS: "0",
        SEED: "none",
        LOG_LEVEL: "error",
        BUS_RETRY_BASE_MS: "50",
        DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      },
    });
    server = await serveRuntime(runtime);
    base = server.base;
    for (const name of ["ada", "bob", "cy"]) {
      const email = `${name}-${Date.now()}@example.com`;
      const answer = await settles(base, "register", "POST", "/auth/register", { body: { email, password, name } });
      expect(answer.status).toBe(201);
      users.push({ email, token: answer.body.accessToken, id: answer.body.user.id });
    }
    await runtime.bus.drain();
  }, SLOW);

  afterAll(async () => {
    await proxy?.restore();
    await server?.close();
    await runtime?.close();
    await proxy?.close();
    await database?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.info(`[database away] requests ${sentFigures.sent}: ${sentFigures.ok} succeeded, ${sentFigures.unavailable} answered 503 unavailable`);
  });

  /** One of each kind of request the services serve, reads and writes. */
  const traffic = (round: string) => {
    const [ada, bob] = users as [Client, Client];
    return [
      { label: "register", method: "POST", path: "/auth/register", body: { email: `new-${round}-${Date.now()}@example.com`, password, name: "New" } },
      { label: "login", method: "POST", path: "/auth/login", body: { email: ada.email, password } },
      { label: "read profile", method: "GET", path: "/profiles/me", token: ada.token },
      { label: "update profile", method: "PATCH", path: "/profiles/me", token: ada.token, body: { bio: `bio ${round}` } },
      { label: "pay", method: "POST", path: "/payments", token: ada.token, body: { recipientEmail: bob.email, amount: "1.00" }, key: `pay-${round}` },
      { label: "list payments", method: "GET", path: "/payments", token: ada.token },
      { label: "auth me", method: "GET", path: "/auth/me", token: ada.token },
    ];
  };

  async function send(round: string): Promise<{ label: string; answer: Answer }[]> {
    return Promise.all(
      traffic(round).map(async (r) => {
        sentFigures.sent++;
        const answer = await settles(base, r.label, r.method, r.path, {
          ...(r.body ? { body: r.body } : {}),
          ...(r.token ? { token: r.token } : {}),
          ...(r.key ? { headers: { "idempotency-key": r.key } } : {}),
        });
        if (answer.status === 503) sentFigures.unavailable++;
        if (answer.status < 300) sentFigures.ok++;
        return { label: r.label, answer };
      }),
    );
  }

  const healthOf = (prefix: string) => settles(base, `health ${prefix}`, "GET", `${prefix}/health`);
  const prefixes = ["/auth", "/profiles", "/payments", "/admin"];
  const paymentsCount = async () => Number((await rows<{ n: number }>(database, "select count(*)::int as n from payments.payments"))[0]?.n);

  test(
    "cut: every request answers 503 unavailable and health 503; restored: everything works again without a restart",
    async () => {
      const up = await send("before");
      expect(up.map((r) => [r.label, r.answer.status])).toEqual([
        ["register", 201],
        ["login", 200],
        ["read profile", 200],
        ["update profile", 200],
        ["pay", 201],
        ["list payments", 200],
        ["auth me", 200],
      ]);
      const paymentsBefore = await paymentsCount();

      // Requests already in flight when the connection is cut answer too: success or 503, never a 5xx of ours.
      const inFlight = send("cut");
      await proxy.cut();
      for (const { label, answer } of await inFlight) expect([label, answer.status < 500 || answer.status === 503]).toEqual([label, true]);

      for (const round of ["down-1", "down-2"]) {
        for (const { label, answer } of await send(round)) {
          expect([label, answer.status, answer.body]).toEqual([label, 503, unavailable]);
        }
      }
      for (const prefix of prefixes) {
        const health = await healthOf(prefix);
        expect([prefix, health.status, health.body.status, health.body.database]).toEqual([prefix, 503, "degraded", { status: "down", latencyMs: null }]);
      }

      await proxy.restore();
      for (const prefix of prefixes) {
        const health = await healthOf(prefix);
        expect([prefix, health.status, health.body.database.status]).toEqual([prefix, 200, "ok"]);
      }
      const after = await send("after");
      expect(after.map((r) => [r.label, r.answer.status])).toEqual(up.map((r) => [r.label, r.answer.status]));
      // Nothing refused during the outage was written; the payment after it was.
      expect(await paymentsCount()).toBeGreaterThanOrEqual(paymentsBefore + 1);
      const keys = await rows<{ key: string }>(database, "select key from payments.idempotency_keys where key like 'pay-down-%'");
      expect(keys).toEqual([]);
    },
    SLOW,
  );

  test(
    "stalled (connections open, nothing answers): every request answers 503 unavailable once its statement times out, health 503; then everything works again",
    async () => {
      const up = await send("before-stall");
      expect(up.every((r) => r.answer.status < 300)).toBe(true);
      const paymentsBefore = await paymentsCount();
      proxy.stall();
      try {
        for (const round of ["stalled-1", "stalled-2"]) {
          const started = performance.now();
          const answers = await send(round);
          const tookMs = performance.now() - started;
          for (const { label, answer } of answers) expect([label, answer.status, answer.body]).toEqual([label, 503, unavailable]);
          // Bounded by the statement timeout (a connection the pool must open instead waits its
          // 5 s connect timeout), not by the 60 s hang guard.
          expect(tookMs).toBeLessThan(QUERY_TIMEOUT_MS + 5_000 + 5_000);
        }
        for (const prefix of prefixes) {
          const health = await healthOf(prefix);
          expect([prefix, health.status, health.body.database.status]).toEqual([prefix, 503, "down"]);
        }
      } finally {
        proxy.unstall();
      }
      const after = await send("after-stall");
      expect(after.map((r) => [r.label, r.answer.status])).toEqual(up.map((r) => [r.label, r.answer.status]));
      // The statements held in the stall never reached the server: nothing of those rounds was written.
      const keys = await rows<{ key: string }>(database, "select key from payments.idempotency_keys where key like 'pay-stalled-%'");
      expect(keys).toEqual([]);
      expect(await paymentsCount()).toBe(paymentsBefore + 1);
    },
    SLOW,
  );

  test(
    "the server terminates every connection: requests answer (success or 503) and the next ones succeed",
    async () => {
      const terminated = await rows<{ n: number }>(
        database,
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
      );
      expect(terminated[0]?.n).toBeGreaterThan(0);
      for (const { label, answer } of await send("terminated")) expect([label, answer.status === 503 || answer.status < 500]).toEqual([label, true]);
      const next = await send("after-terminate");
      expect(next.map((r) => [r.label, r.answer.status])).toEqual([
        ["register", 201],
        ["login", 200],
        ["read profile", 200],
        ["update profile", 200],
        ["pay", 201],
        ["list payments", 200],
        ["auth me", 200],
      ]);
    },
    SLOW,
  );
});

type AuthMode = "up" | "refused" | "hanging" | "failing";

describe("auth goes away, as payments reaches it", () => {
  const link = { mode: "up" as AuthMode, calls: 0 };
  let env: Awaited<ReturnType<typeof testEnvironment>>;
  let runtime: LocalRuntime;
  let server: Awaited<ReturnType<typeof serveRuntime>>;
  let base: string;
  const users: Client[] = [];

  beforeAll(async () => {
    env = await testEnvironment({ AUTH_TIMEOUT_MS: "200", BUS_RETRY_BASE_MS: "50" });
    // Payments' calls to auth go through a link the test controls; auth itself stays up.
    const services = localServices.map((service) =>
      service.module.manifest.name !== "payments"
        ? service
        : localService({
            module: service.module,
            context: (local) =>
              paymentsContextFromConfig(readPaymentsConfig(local.env), {
                ...local.overrides,
                authFetch: async (request) => {
                  link.calls++;
                  if (link.mode === "refused")
                    throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
                  if (link.mode === "failing") return new Response(JSON.stringify({ error: { code: "internal", message: "x" } }), { status: 500 });
                  if (link.mode === "hanging") {
                    return new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
                  }
                  return local.fetch(request);
                },
              }),
          }),
    );
    runtime = await createLocalRuntime({ env: env.env, services });
    server = await serveRuntime(runtime);
    base = server.base;
    for (let i = 0; i < 5; i++) {
      const email = `auth-away-${i}-${Date.now()}@example.com`;
      const answer = await settles(base, "register", "POST", "/auth/register", { body: { email, password, name: `User ${i}` } });
      expect(answer.status).toBe(201);
      users.push({ email, token: answer.body.accessToken, id: answer.body.user.id });
    }
    await runtime.bus.drain();
  }, SLOW);

  afterAll(async () => {
    await server?.close();
    await runtime?.close();
    await env?.dispose();
  });

  const counts = async () => {
    const database = runtime.databases.get("payments")!;
    const [row] = await rows<{ payments: number; outbox: number; keys: number }>(
      database,
      `select (select count(*)::int from payments.payments) as payments, (select count(*)::int from payments.outbox) as outbox,
              (select count(*)::int from payments.idempotency_keys) as keys`,
    );
    return row;
  };

  test.each(["refused", "hanging", "failing"] as const)(
    "auth %s: payments answers 503 unavailable, creates nothing, and recovers by itself with the same idempotency key",
    async (mode) => {
      const sender = users[0]!;
      // A recipient payments has not looked up yet: a found user is cached for five minutes.
      const recipient = users[{ refused: 1, hanging: 2, failing: 3 }[mode]]!;
      const body = { recipientEmail: recipient.email, amount: "3.50" };
      const key = `auth-${mode}-${Date.now()}`;
      // The earlier cases' payments complete in the background: counted once that is done.
      await runtime.bus.drain();
      const before = await counts();
      link.mode = mode;
      link.calls = 0;
      for (let i = 0; i < 3; i++) {
        const answer = await settles(base, `pay while auth is ${mode}`, "POST", "/payments", {
          body,
          token: sender.token,
          headers: { "idempotency-key": key },
        });
        expect([answer.status, answer.body]).toEqual([503, unavailable]);
      }
      expect(link.calls).toBeGreaterThanOrEqual(3);
      console.info(`[auth ${mode}] 3 payment requests answered 503 unavailable after ${link.calls} calls to auth (one retry each); nothing created`);
      await runtime.bus.drain();
      expect(await counts()).toEqual(before);
      // Auth's own routes are not affected: the outage is payments' link to it.
      expect((await settles(base, "auth me", "GET", "/auth/me", { token: sender.token })).status).toBe(200);

      link.mode = "up";
      const created = await settles(base, "pay after auth is back", "POST", "/payments", { body, token: sender.token, headers: { "idempotency-key": key } });
      expect([created.status, created.body.payment?.recipientId]).toEqual([201, recipient.id]);
      const replay = await settles(base, "replay", "POST", "/payments", { body, token: sender.token, headers: { "idempotency-key": key } });
      expect([replay.status, replay.body.payment.id]).toEqual([201, created.body.payment.id]);
      const after = await counts();
      expect([after!.payments - before!.payments, after!.keys - before!.keys]).toEqual([1, 1]);
    },
    SLOW,
  );
});
