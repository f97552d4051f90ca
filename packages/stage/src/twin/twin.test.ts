import { createEnclaveClient } from "@enclave/client";
import { runApiFlow } from "@enclave/client/api-flow.testing";
import { developmentPeople } from "@enclave/core/seed";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { postgresBinaries } from "./postgres";
import { startTwin, type Twin } from "./twin";
import { twinSql as sql, stageServices, sweepOutboxes } from "./twin.testing";

/**
 * The whole contract against the stage as deployed: the real sst.config.ts captured, the
 * migrate function run first as the deploy runs it, every function's uploaded package in its own
 * process with only its captured environment, PostgreSQL behind the Neon driver, events through
 * the captured rules, dead letters in the captured queues. Both topologies.
 */

const J = { "content-type": "application/json" };

async function call(
  twin: Twin,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const response = await fetch(`${twin.url}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined || options.raw !== undefined ? J : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.raw !== undefined ? { body: options.raw } : options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in assertions
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any>, headers: response.headers };
}

async function allAuditRows(twin: Twin, token: string): Promise<{ id: string; action: string }[]> {
  const rows: { id: string; action: string }[] = [];
  let cursor: string | null = null;
  do {
    const page = await call(twin, "GET", `/admin/audit-logs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token });
    expect(page.status).toBe(200);
    rows.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  return rows;
}

for (const topology of ["per-service", "single"] as const) {
  describe.skipIf(!postgresBinaries())(`the stage twin, ${topology}`, () => {
    let twin: Twin;
    const databaseOf = (service: string) => (topology === "single" ? "enclave" : service);
    let ada: { token: string; id: string };
    let bob: { token: string; id: string };
    let admin: string;

    beforeAll(async () => {
      twin = await startTwin({ stage: topology === "single" ? "pr-8" : "pr-7", topology, timers: false, maxConcurrency: 2 });
      await sweepOutboxes(twin, databaseOf);
    }, 180_000);
    afterAll(async () => {
      await twin?.stop();
    }, 60_000);

    test("the deploy's migrate invocation made each service's database and seeded the stage", async () => {
      const migration = twin.migration as { services: { service: string; database: string; applied: string[]; seeded: string[] }[] };
      expect(migration.services.map((s) => [s.service, s.database])).toEqual(["auth", "profile", "payments", "admin"].map((s) => [s, databaseOf(s)]));
      for (const service of migration.services) expect(service.applied.length, service.service).toBeGreaterThan(0);
      expect(migration.services.find((s) => s.service === "auth")?.seeded).toEqual(["development"]);
      expect(migration.services.find((s) => s.service === "admin")?.seeded).toEqual(["essential"]);
      const roles = await sql<{ rolname: string; rolsuper: boolean }>(twin, "postgres", "select rolname, rolsuper from pg_roles where rolname like '%_app'");
      expect(roles.map((r) => r.rolname).sort()).toEqual(["admin_app", "auth_app", "payments_app", "profile_app"]);
      expect(roles.every((r) => !r.rolsuper)).toBe(true);
    });

    test("the development administrator signs in; users register; a profile appears by event", async () => {
      const login = await call(twin, "POST", "/auth/login", { body: { email: "admin@enclave.dev", password: "enclave-admin-dev" } });
      expect(login.status).toBe(200);
      expect(login.body.user.role).toBe("ADMIN");
      admin = login.body.accessToken;
      const registered = [];
      for (const [email, name] of [
        ["ada@example.com", "Ada"],
        ["bob@example.com", "Bob"],
      ]) {
        const response = await call(twin, "POST", "/auth/register", { body: { email, password: "correct horse", name } });
        expect(response.status).toBe(201);
        registered.push({ token: response.body.accessToken as string, id: response.body.user.id as string });
      }
      [ada, bob] = registered as [typeof ada, typeof bob];
      const again = await call(twin, "POST", "/auth/register", { body: { email: "ADA@example.com", password: "correct horse", name: "Ada" } });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe("conflict");

      await twin.idle();
      const profiles = await sql<{ user_id: string }>(twin, databaseOf("profile"), "select user_id from profile.user_profiles");
      // The seeded administrator's user.registered reached profile through the sweeper too; the demo users' profiles were seeded.
      const demo = Object.values(developmentPeople).map((p) => p.id);
      expect(profiles.map((p) => p.user_id).sort()).toEqual([login.body.user.id, ada.id, bob.id, ...demo].sort());
      const me = await call(twin, "GET", "/profiles/me", { token: ada.token });
      expect(me.status).toBe(200);
      expect(me.body.profile.userId).toBe(ada.id);
      const patched = await call(twin, "PATCH", "/profiles/me", { token: ada.token, body: { bio: "Analyst" } });
      expect(patched.status).toBe(200);
      expect(patched.body.profile.bio).toBe("Analyst");
      expect((await call(twin, "GET", `/profiles/${ada.id}`, { token: bob.token })).status).toBe(403);
    }, 60_000);

    test("payments: idempotent creation, completion in the background, the provider's limit, a recipient looked up through the API", async () => {
      const key = { "idempotency-key": `twin-${topology}` };
      const body = { recipientEmail: "bob@example.com", amount: "12.50" };
      const created = await call(twin, "POST", "/payments", { token: ada.token, body, headers: key });
      expect(created.status).toBe(201);
      expect(created.body.payment).toMatchObject({ senderId: ada.id, recipientId: bob.id, amount: "12.50", status: "pending" });
      const replay = await call(twin, "POST", "/payments", { token: ada.token, body, headers: key });
      expect(replay).toMatchObject({ status: 201, body: created.body });
      expect((await call(twin, "POST", "/payments", { token: ada.token, body: { ...body, amount: "13.00" }, headers: key })).status).toBe(409);
      const declined = await call(twin, "POST", "/payments", {
        token: ada.token,
        body: { recipientEmail: "bob@example.com", amount: "20000.00" },
        headers: { "idempotency-key": "big" },
      });
      expect(declined.status).toBe(201);
      const nobody = await call(twin, "POST", "/payments", {
        token: ada.token,
        body: { recipientEmail: "nobody@example.com", amount: "1.00" },
        headers: { "idempotency-key": "x" },
      });
      expect(nobody.status).toBe(404);
      expect(
        (
          await call(twin, "POST", "/payments", {
            token: ada.token,
            body: { recipientEmail: "ada@example.com", amount: "1.00" },
            headers: { "idempotency-key": "y" },
          })
        ).status,
      ).toBe(400);

      await twin.idle();
      const done = await call(twin, "GET", `/payments/${created.body.payment.id}`, { token: bob.token });
      expect(done.body.payment.status).toBe("completed");
      const failed = await call(twin, "GET", `/payments/${declined.body.payment.id}`, { token: ada.token });
      expect(failed.body.payment).toMatchObject({ status: "failed", failureReason: "limit_exceeded" });
      const history = await call(twin, "GET", `/payments/${created.body.payment.id}/transactions`, { token: ada.token });
      expect(history.body.items.map((t: { status: string }) => t.status)).toEqual(["pending", "processing", "completed"]);
    }, 60_000);

    test("an administrator changes a role and the configuration", async () => {
      const role = await call(twin, "PATCH", `/auth/users/${bob.id}/role`, { token: admin, body: { role: "VENDOR" } });
      expect(role.status).toBe(200);
      expect(role.body.user.role).toBe("VENDOR");
      expect((await call(twin, "PATCH", `/auth/users/${bob.id}/role`, { token: ada.token, body: { role: "ADMIN" } })).status).toBe(403);
      expect((await call(twin, "PUT", "/admin/config/feature.twin", { token: admin, body: { value: true, description: "set by the twin" } })).status).toBe(200);
      expect((await call(twin, "GET", "/admin/config/feature.twin", { token: admin })).body).toMatchObject({ key: "feature.twin", value: true });
      expect((await call(twin, "DELETE", "/admin/config/feature.twin", { token: admin })).status).toBe(204);
      expect((await call(twin, "GET", "/admin/config/feature.twin", { token: admin })).status).toBe(404);
      expect((await call(twin, "GET", "/admin/config", { token: ada.token })).status).toBe(403);
    }, 60_000);

    test("every event that crossed the bus is audited exactly once, even when delivered twice", async () => {
      await twin.idle();
      await sweepOutboxes(twin, databaseOf);
      const published = new Map(twin.eventBridge.entries().map((e) => [String((e.detail as { id: string }).id), e]));
      const rows = await allAuditRows(twin, admin);
      expect(rows.filter((r) => !published.has(r.id)).map((r) => JSON.stringify(r))).toEqual([]);
      expect(rows.map((r) => r.id).sort()).toEqual([...published.keys()].sort());
      const actions = rows.map((r) => r.action);
      for (const type of [
        "user.registered",
        "profile.created",
        "profile.updated",
        "payment.created",
        "payment.completed",
        "payment.failed",
        "user.role_changed",
        "config.changed",
      ]) {
        expect(actions, type).toContain(type);
      }
      // The seeds' events (the development administrator and demo users) and the two registrations.
      expect(actions.filter((a) => a === "user.registered")).toHaveLength(3 + Object.keys(developmentPeople).length);

      const audit = twin.functionOf("AdminAudit");
      const delivered = twin.lambda.invocations().find((i) => i.functionName === audit.name && i.status === "succeeded");
      expect(delivered).toBeDefined();
      const again = await twin.invoke(audit.name, delivered!.payload);
      expect(again.ok).toBe(true);
      expect(await allAuditRows(twin, admin)).toHaveLength(rows.length);
    }, 60_000);

    test("bad input gets the API.md error shape; unrouted paths get API Gateway's", async () => {
      const malformed = await call(twin, "POST", "/auth/login", { raw: '{"email":' });
      expect(malformed.status).toBe(400);
      expect(malformed.body.error.code).toBe("malformed_json");
      const invalid = await call(twin, "POST", "/auth/register", { body: { email: "not-an-email", password: "x", name: "" } });
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.code).toBe("validation_failed");
      expect((await call(twin, "GET", "/auth/me")).body.error.code).toBe("unauthorized");
      expect((await call(twin, "GET", "/profiles/me", { token: "forged.token.value" })).status).toBe(401);
      const unknown = await call(twin, "GET", "/auth/no-such-route");
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe("not_found");
      expect(await call(twin, "GET", "/nowhere")).toMatchObject({ status: 404, body: { message: "Not Found" } });
      const health = await call(twin, "GET", "/payments/health");
      expect(health.body).toMatchObject({ service: "payments", status: "ok", database: { status: "ok" } });
    });

    test("a consumer that keeps failing is retried as Lambda retries, dead-lettered in its queue, and redriven", async () => {
      const subscriber = twin.functionOf("ProfileOnUserRegistered");
      const response = await fetch(twin.eventBridge.endpoint!, {
        method: "POST",
        headers: { "x-amz-target": "AWSEvents.PutEvents", "content-type": "application/x-amz-json-1.1" },
        body: JSON.stringify({
          Entries: [
            { Source: "enclave.auth", DetailType: "user.registered", Detail: JSON.stringify({ id: "not-an-envelope" }), EventBusName: twin.model.bus.name },
          ],
        }),
      });
      expect(response.status).toBe(200);
      await twin.idle();
      const attempts = twin.lambda.invocations().filter((i) => i.functionName === subscriber.name && JSON.stringify(i.payload).includes("not-an-envelope"));
      expect(attempts).toHaveLength(1);
      expect(attempts[0]!.attempts).toHaveLength(subscriber.asyncInvoke!.maximumRetryAttempts + 1);
      const queue = subscriber.asyncInvoke!.onFailureDestination!;
      const letters = twin.queues.messages(queue);
      expect(letters).toHaveLength(1);
      expect(JSON.parse(letters[0]!.body)).toMatchObject({
        requestContext: { condition: "RetriesExhausted" },
        responseContext: { functionError: "Unhandled" },
      });
      const redriven = await call(twin, "POST", "/_twin/queues/redrive", { body: { queue } });
      expect(redriven.body.results).toEqual([expect.objectContaining({ outcome: "failed" })]);
      expect(twin.queues.messages(queue)).toHaveLength(1);
    }, 60_000);

    test("every schedule runs its deployed function to success as Scheduler fires it; the retention crons delete what is past its window", async () => {
      const count = async (service: string, query: string) => Number((await sql<{ n: string }>(twin, databaseOf(service), query))[0]?.n);
      const total = async (services: readonly string[], query: (service: string) => string) =>
        (await Promise.all(services.map((s) => count(s, query(s))))).reduce((a, b) => a + b, 0);
      // The services that consume events, and so keep an inbox.
      const consumers = (
        await Promise.all(
          stageServices.map(async (s) =>
            (await count(s, `select count(*) as n from pg_tables where schemaname = '${s}' and tablename = 'inbox'`)) === 1 ? [s] : [],
          ),
        )
      ).flat();
      // Rows past their windows: published events and consumed deliveries aged, an expired refresh-token family, a stale sign-in counter, an expired idempotency key.
      for (const service of stageServices)
        await sql(twin, databaseOf(service), `update ${service}.outbox set published_at = now() - interval '8 days' where published_at is not null`);
      for (const service of consumers) await sql(twin, databaseOf(service), `update ${service}.inbox set processed_at = now() - interval '31 days'`);
      await sql(twin, databaseOf("auth"), `update auth.refresh_tokens set expires_at = now() - interval '1 second' where user_id = '${bob.id}'`);
      await sql(
        twin,
        databaseOf("auth"),
        `insert into auth.login_attempts (account_key, failures, window_started_at) values ('stale@example.com', 1, now() - interval '1 day')`,
      );
      await sql(twin, databaseOf("payments"), "update payments.idempotency_keys set expires_at = now() - interval '1 second'");
      const aged = async () => ({
        outbox: await total(stageServices, (s) => `select count(*) as n from ${s}.outbox where published_at < now() - interval '7 days'`),
        inbox: await total(consumers, (s) => `select count(*) as n from ${s}.inbox where processed_at < now() - interval '30 days'`),
        refreshTokens: await count("auth", `select count(*) as n from auth.refresh_tokens where user_id = '${bob.id}'`),
        loginAttempts: await count("auth", "select count(*) as n from auth.login_attempts where account_key = 'stale@example.com'"),
        idempotencyKeys: await count("payments", "select count(*) as n from payments.idempotency_keys"),
      });
      const before = await aged();
      for (const [what, n] of Object.entries(before)) expect([what, n > 0]).toEqual([what, true]);

      const runs = [];
      for (const schedule of twin.model.schedules) {
        const run = await twin.scheduler.fire(schedule.name);
        runs.push([schedule.name, run.delivery, run.invocation?.status]);
      }
      expect(runs).toEqual(twin.model.schedules.map((s) => [s.name, "delivered", "succeeded"]));
      await twin.idle();
      expect(await aged()).toEqual({ outbox: 0, inbox: 0, refreshTokens: 0, loginAttempts: 0, idempotencyKeys: 0 });
      // Nothing live went with them: Ada's refresh tokens, not expired, are all still there.
      expect(await count("auth", `select count(*) as n from auth.refresh_tokens where user_id = '${ada.id}' and expires_at > now()`)).toBeGreaterThan(0);
    }, 120_000);

    test("every route of API.md, through the typed client, answers as the local runtime does", async () => {
      await runApiFlow(createEnclaveClient(twin.url), {
        baseUrl: twin.url,
        admin: { email: "admin@enclave.dev", password: "enclave-admin-dev" },
        settle: async () => {
          await twin.idle();
          await sweepOutboxes(twin, databaseOf);
        },
      });
    }, 120_000);
  });
}
