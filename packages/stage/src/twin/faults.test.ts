/**
 * Faults on the stage as deployed (the stage twin: every function's uploaded package in processes
 * of its own, PostgreSQL behind the Neon protocols, events through the captured rules, Lambda's
 * retries and dead-letter queues), as packages/local/src/faults-*.test.ts inject them into
 * `npm run dev`:
 *   - execution environments killed with SIGKILL under mixed traffic, APIs and consumers alike,
 *     over and over: what was acknowledged is there exactly once, clients that retry what got no
 *     answer end with one effect, every committed event is delivered and audited once;
 *   - the database goes away and comes back: 503 `unavailable` and health 503 while it is gone,
 *     nothing written, and the same functions serve again once it is back, with no redeploy.
 */
import { randomUUID } from "node:crypto";
import {
  type Answer,
  acknowledged,
  call,
  expectExactlyOnce,
  mixedTraffic,
  faultPassword as password,
  registerUser,
  retryAsClients,
  type Sent,
  type TrafficUser,
} from "@enclave/local/faults.testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresBinaries } from "./postgres";
import { startTwin, type Twin } from "./twin";
import { stageServices, sweepOutboxes, twinSql } from "./twin.testing";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A 5xx a client may see while environments are killed: API Gateway's own answer for a function
 * that died mid-request, or a service's 503 `unavailable` when a service it calls did.
 */
const crashAnswer = (answer: Answer) =>
  (answer.status === 500 && answer.body?.message === "Internal Server Error") || (answer.status === 503 && answer.body?.error?.code === "unavailable");

/** Sends `request` every 200 ms, at most `attempts` times, until it answers 200; returns the last answer. */
async function untilOk(attempts: number, request: () => Promise<Answer | undefined>): Promise<Answer | undefined> {
  let answer: Answer | undefined;
  for (let attempt = 0; attempt < attempts && answer?.status !== 200; attempt++) {
    if (attempt > 0) await sleep(200);
    answer = await request();
  }
  return answer;
}

describe.skipIf(!postgresBinaries())("faults on the stage twin", () => {
  let twin: Twin;
  const databaseOf = (service: string) => service;
  const count = async (service: string, query: string) => Number((await twinSql<{ n: string }>(twin, databaseOf(service), query))[0]?.n);

  beforeAll(async () => {
    twin = await startTwin({ stage: "pr-12", topology: "per-service", timers: false, maxConcurrency: 2 });
    await sweepOutboxes(twin, databaseOf);
  }, 180_000);
  afterAll(async () => {
    await twin?.stop();
  }, 60_000);

  test("execution environments killed under mixed traffic: acknowledged writes exactly once, every event delivered and audited once", async () => {
    const base = twin.url;
    const run = randomUUID().slice(0, 8);
    const users: TrafficUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await registerUser(base, `base-${i}-${run}@example.com`));
    await twin.idle();

    const sent: Sent[] = [];
    let stopping = false;
    const clients = mixedTraffic(base, users, run, sent, () => stopping);

    // Every API and consumer, one after another, killed while the traffic runs (crons are left alone:
    // their schedules fire only when the test fires them).
    const victims = twin.model.functions.filter(
      (f) => f.component.endsWith("Api") || twin.model.rules.some((r) => r.targets.some((t) => t.functionName === f.name)),
    );
    expect(victims.length).toBeGreaterThanOrEqual(6);
    // One kill at a time; before each, the traffic gets two more writes through (however slow the
    // cold starts after the last kill), until every function was killed twice.
    let crashes = 0;
    const crashed = new Set<string>();
    while (crashes < 2 * victims.length) {
      const target = sent.filter(acknowledged).length + 2;
      const deadline = Date.now() + 20_000;
      while (sent.filter(acknowledged).length < target && Date.now() < deadline) await sleep(20);
      const victim = victims[crashes % victims.length]!;
      const fn = twin.functions.get(victim.name)!;
      if (fn.instances > 0) crashed.add(victim.component);
      await fn.crash();
      crashes++;
    }
    stopping = true;
    await clients;

    // Answers: successes and refusals the contract allows; a 5xx only where a function died.
    for (const s of sent) expect([s.op, s.answer?.status]).not.toEqual([s.op, undefined]);
    const failed = sent.filter((s) => s.answer!.status >= 500);
    for (const s of failed) expect([s.op, s.answer!.status, crashAnswer(s.answer!)]).toEqual([s.op, s.answer!.status, true]);
    for (const s of sent) if (s.answer!.status < 500 && s.op === "login") expect(s.answer!.status).toBe(200);
    expect(failed.length, "the kills hit requests in flight").toBeGreaterThan(0);
    const tally = (all: Sent[]) => {
      const counts = new Map<string, number>();
      for (const s of all) counts.set(`${s.op} ${s.answer!.status}`, (counts.get(`${s.op} ${s.answer!.status}`) ?? 0) + 1);
      return JSON.stringify(Object.fromEntries(counts));
    };
    expect(sent.filter(acknowledged).length, tally(sent)).toBeGreaterThanOrEqual(2 * crashes);

    // Clients retry what got no success, and repeat what was acknowledged: one effect each.
    const paymentIds = await retryAsClients(base, sent);

    // What a killed relay left is the sweepers' (rows older than their grace period); what ran out of
    // retries waits in a dead-letter queue and is redriven, as docs/OPERATIONS.md says.
    await twin.idle();
    for (const service of stageServices)
      await twinSql(twin, databaseOf(service), `update ${service}.outbox set created_at = created_at - interval '1 minute' where published_at is null`);
    await sweepOutboxes(twin, databaseOf);
    let redriven = 0;
    for (const queue of twin.queues.queues()) {
      if (twin.queues.messages(queue.arn).length === 0) continue;
      const results = await twin.queues.redrive(queue.arn, { lambda: twin.lambda, eventBridge: twin.eventBridge });
      redriven += results.length;
      for (const result of results) expect(result).toMatchObject({ outcome: "succeeded" });
    }
    await twin.idle();
    await sweepOutboxes(twin, databaseOf);
    for (const queue of twin.queues.queues()) expect(twin.queues.messages(queue.arn), queue.arn).toEqual([]);

    // Count everything; every payment was also carried to its end by the background processing, however often it was killed.
    const counted = await expectExactlyOnce(
      <T>(service: string, text: string) => twinSql<T>(twin, databaseOf(service), text),
      { sent, users, paymentIds },
      { paymentsSettled: true },
    );
    console.info(
      `[twin] ${crashes} kills of ${victims.length} functions (${crashed.size} had environments running when killed: ${[...crashed].join(", ")}); ` +
        `requests ${sent.length + users.length}, acknowledged writes ${sent.filter(acknowledged).length + users.length}, 5xx while killed ${failed.length}; ` +
        `dead letters redriven ${redriven}; users ${counted.users}, profiles ${counted.profiles}, payments ${counted.payments}, audit rows ${counted.audited} = events ${counted.events}`,
    );
  }, 600_000);

  test("the database goes away: 503 unavailable and health 503, nothing written; back without a redeploy", async () => {
    const base = twin.url;
    const email = `outage-${randomUUID().slice(0, 8)}@example.com`;
    const user = await call(base, "POST", "/auth/register", { body: { email: `before-${email}`, password, name: "Before" } });
    expect(user?.status).toBe(201);
    const token = user!.body.accessToken as string;
    expect((await call(base, "GET", "/auth/me", { token }))?.status).toBe(200);
    await twin.idle();
    const usersBefore = await count("auth", "select count(*) as n from auth.users");

    await twin.postgres.halt();
    try {
      for (const [method, path, body] of [
        ["GET", "/auth/me", undefined],
        ["GET", "/profiles/me", undefined],
        ["GET", "/payments", undefined],
        ["POST", "/auth/register", { email, password, name: "During" }],
        ["POST", "/auth/login", { email: `before-${email}`, password }],
      ] as const) {
        const started = performance.now();
        const answer = await call(base, method, path, { token, ...(body ? { body } : {}) });
        expect([method, path, answer?.status, answer?.body]).toEqual([method, path, 503, { error: { code: "unavailable", message: expect.any(String) } }]);
        // Answered well within the functions' timeout: nothing waits on a database that is not there.
        expect(performance.now() - started, `${method} ${path}`).toBeLessThan(10_000);
      }
      for (const service of ["auth", "profiles", "payments", "admin"]) {
        const health = await call(base, "GET", `/${service}/health`);
        expect([service, health?.status, health?.body.database?.status]).toEqual([service, 503, "down"]);
      }
    } finally {
      await twin.postgres.resume();
    }

    // The same execution environments serve again; the refused registration had written nothing.
    expect((await untilOk(50, () => call(base, "GET", "/auth/me", { token })))?.status).toBe(200);
    expect(await count("auth", "select count(*) as n from auth.users")).toBe(usersBefore);
    expect((await call(base, "POST", "/auth/register", { body: { email, password, name: "After" } }))?.status).toBe(201);
    for (const service of ["auth", "profiles", "payments", "admin"]) expect((await call(base, "GET", `/${service}/health`))?.status, service).toBe(200);
  }, 180_000);

  test("auth stops answering while payments looks a recipient up: payments answers 503 and creates nothing, then recovers by itself", async () => {
    const base = twin.url;
    const email = `auth-hang-${randomUUID().slice(0, 8)}@example.com`;
    const [payer, payee] = await Promise.all(
      ["payer", "payee"].map((name) => call(base, "POST", "/auth/register", { body: { email: `${name}-${email}`, password, name } })),
    );
    expect([payer?.status, payee?.status]).toEqual([201, 201]);
    const key = `hang-${email}`;
    // A recipient payments has not looked up yet, so it must ask auth (found users are cached).
    const payment = {
      token: payer!.body.accessToken as string,
      body: { recipientEmail: `payee-${email}`, amount: "2.00" },
      headers: { "idempotency-key": key },
    };
    const made = () => count("payments", `select count(*) as n from payments.idempotency_keys where key = '${key}'`);

    const auth = twin.functions.get(twin.functionOf("AuthApi").name)!;
    auth.hang();
    try {
      const started = performance.now();
      const refused = await call(base, "POST", "/payments", payment);
      expect([refused?.status, refused?.body]).toEqual([503, { error: { code: "unavailable", message: expect.any(String) } }]);
      // Payments' own timeouts (2 s per attempt, one retry), well before its function's 10 s.
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(await made()).toBe(0);
    } finally {
      auth.resume();
    }

    expect((await untilOk(100, () => call(base, "GET", "/auth/health")))?.status).toBe(200);
    const paid = await call(base, "POST", "/payments", payment);
    expect(paid?.status).toBe(201);
    expect(await made()).toBe(1);
  }, 120_000);

  test("the database stops answering (connections open): 503 unavailable before the functions time out; a retried payment is made once", async () => {
    const base = twin.url;
    const email = `stall-${randomUUID().slice(0, 8)}@example.com`;
    const [payer, payee] = await Promise.all(
      ["payer", "payee"].map((name) => call(base, "POST", "/auth/register", { body: { email: `${name}-${email}`, password, name } })),
    );
    expect([payer?.status, payee?.status]).toEqual([201, 201]);
    const token = payer!.body.accessToken as string;
    const payment = { body: { recipientEmail: `payee-${email}`, amount: "3.00" }, token, headers: { "idempotency-key": `stall-${email}` } };
    expect((await call(base, "POST", "/payments", { ...payment, headers: { "idempotency-key": `before-${email}` } }))?.status).toBe(201);
    // Every function the frozen requests reach is warm: no cold start eats into the margin below.
    for (const path of ["/auth/me", "/profiles/me", "/payments"]) expect((await call(base, "GET", path, { token }))?.status, path).toBe(200);
    await twin.idle();

    twin.postgres.freeze();
    try {
      const requests = [
        ["GET", "/auth/me", {}],
        ["GET", "/profiles/me", {}],
        ["GET", "/payments", {}],
        ["POST", "/payments", payment],
      ] as const;
      const answers = await Promise.all(
        requests.map(async ([method, path, options]) => {
          const started = performance.now();
          const answer = await call(base, method, path, { token, ...options });
          return { method, path, status: answer?.status, body: answer?.body, tookMs: performance.now() - started };
        }),
      );
      for (const { method, path, status, body, tookMs } of answers) {
        expect([method, path, status, body]).toEqual([method, path, 503, { error: { code: "unavailable", message: expect.any(String) } }]);
        // The service's own 503 after DB_QUERY_TIMEOUT_MS (8 s), before the function's 10 s timeout would end it.
        expect(tookMs, `${method} ${path}`).toBeLessThan(10_000);
      }
      for (const service of ["auth", "profiles", "payments", "admin"]) {
        const health = await call(base, "GET", `/${service}/health`);
        expect([service, health?.status, health?.body.database?.status]).toEqual([service, 503, "down"]);
      }
    } finally {
      twin.postgres.thaw();
    }

    expect((await untilOk(50, () => call(base, "GET", "/auth/me", { token })))?.status).toBe(200);
    // A statement that timed out may still have run once the server went on: the client retries
    // with the same key, and the key makes it one payment either way.
    const retried = await call(base, "POST", "/payments", { ...payment, token });
    expect(retried?.status).toBe(201);
    const made = await twinSql<{ n: string }>(
      twin,
      databaseOf("payments"),
      `select count(*) as n from payments.payments p join payments.idempotency_keys k on k.payment_id = p.id where k.key = 'stall-${email}'`,
    );
    expect(Number(made[0]?.n)).toBe(1);
  }, 180_000);
});
