/**
 * Two tenants on their own PostgreSQL databases behind one local runtime: whatever route a
 * caller uses, one tenant's users never read or write the other's rows, a token of one is no
 * token on the other, and events stay in the tenant that raised them.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase, rowsOf } from "@enclave/core";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { sql } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closedPort } from "./cli.testing";
import { createTenantsRuntime, type TenantsRuntime } from "./tenants";

interface Session {
  user: { id: string; email: string; role: string };
  accessToken: string;
  refreshToken: string;
}

describe.skipIf(!testServerUrl)("tenants on PostgreSQL (set TEST_DATABASE_URL to run)", { timeout: 120_000 }, () => {
  let dataDir: string;
  const databases: TestDatabase[] = [];
  let shared: TestDatabase;
  let runtime: TenantsRuntime;
  let opened: Database[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "enclave-tenants-"));
    // acme keeps every service in one database (a schema each); globex gives auth its own.
    const [acme, globexAuth, globexRest] = [await createTestDatabase([]), await createTestDatabase([]), await createTestDatabase([])] as TestDatabase[];
    shared = await createTestDatabase([]);
    databases.push(acme!, globexAuth!, globexRest!, shared);
    const file = join(dataDir, "tenants.json");
    writeFileSync(
      file,
      JSON.stringify({ tenants: { acme: { DATABASE_URL: acme!.url }, globex: { AUTH_DATABASE_URL: globexAuth!.url, DATABASE_URL: globexRest!.url } } }),
    );
    runtime = await createTenantsRuntime({
      // The deployment's own DATABASE_URL must reach no tenant.
      env: {
        DATA_DIR: dataDir,
        TENANTS_FILE: file,
        DATABASE_URL: shared.url,
        PROFILE_DATABASE_URL: shared.url,
        LOCAL_CRONS: "0",
        SEED: "none",
        LOG_LEVEL: "error",
        BUS_RETRY_BASE_MS: "20",
      },
    });
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    for (const database of opened) await database.close();
    for (const database of databases) await database.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function call(method: string, path: string, options: { tenant?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.tenant) headers["x-tenant-id"] = options.tenant;
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await runtime.app.fetch(
      new Request(`http://local${path}`, { method, headers, ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}) }),
    );
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, requestId: response.headers.get("x-request-id") };
  }

  const register = async (tenant: string, name: string) => {
    const response = await call("POST", "/auth/register", { tenant, body: { email: `${name}@example.com`, password: "correct horse", name } });
    expect(response.status).toBe(201);
    return response.body as Session;
  };
  const settle = () => Promise.all([...runtime.cells.values()].map((cell) => cell.bus.drain()));

  /** Rows straight from a tenant's database, as the service stores them. */
  async function rows(tenant: "acme" | "globex", service: string, query: ReturnType<typeof sql>) {
    const cell = runtime.cells.get(tenant);
    const database = cell?.databases.get(service);
    if (!database) throw new Error(`no ${service} database for ${tenant}`);
    return rowsOf<Record<string, unknown>>(await database.db.execute(query));
  }

  let acmeAda: Session;
  let acmeBob: Session;
  let globexAda: Session;
  let globexCarol: Session;
  let acmeAdmin: Session;
  let globexAdmin: Session;
  let acmePaymentId: string;

  test("the same email registers in both tenants, as two users, each token naming its tenant", async () => {
    acmeAda = await register("acme", "ada");
    acmeBob = await register("acme", "bob");
    globexAda = await register("globex", "ada");
    globexCarol = await register("globex", "carol");
    expect(acmeAda.user.id).not.toBe(globexAda.user.id);
    expect(decodeJwt(acmeAda.accessToken).tid).toBe("acme");
    expect(decodeJwt(globexAda.accessToken).tid).toBe("globex");
    expect((await call("POST", "/auth/register", { tenant: "acme", body: { email: "ADA@example.com", password: "correct horse", name: "x" } })).status).toBe(
      409,
    );
    expect(await rows("acme", "auth", sql`select email from auth.users order by email`)).toEqual([{ email: "ada@example.com" }, { email: "bob@example.com" }]);
    expect(await rows("globex", "auth", sql`select email from auth.users order by email`)).toEqual([
      { email: "ada@example.com" },
      { email: "carol@example.com" },
    ]);
  });

  test("a request that names no tenant, or an unknown one, is refused in the error shape", async () => {
    const body = { email: "dan@example.com", password: "correct horse", name: "dan" };
    const missing = await call("POST", "/auth/register", { body });
    expect(missing).toMatchObject({ status: 400, body: { error: { code: "validation_failed", details: [{ path: "X-Tenant-Id" }] } } });
    expect(missing.requestId).toBeTruthy();
    expect(await call("POST", "/auth/register", { tenant: "initech", body })).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(await call("POST", "/auth/register", { tenant: "Not A Tenant", body })).toMatchObject({
      status: 400,
      body: { error: { code: "validation_failed" } },
    });
    expect(await call("GET", "/auth/me", { token: "not-a-jwt" })).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
    // What no tenant's data is behind needs no tenant.
    expect((await call("GET", "/payments/openapi.json")).status).toBe(200);
    expect(await rows("acme", "auth", sql`select count(*)::int as n from auth.users where email = 'dan@example.com'`)).toEqual([{ n: 0 }]);
  });

  test("events stay in their tenant: profiles and audit rows exist only where the user registered", async () => {
    await settle();
    expect(await rows("acme", "profile", sql`select user_id from profile.user_profiles order by user_id`)).toEqual(
      [acmeAda.user.id, acmeBob.user.id].sort().map((id) => ({ user_id: id })),
    );
    expect(await rows("globex", "profile", sql`select user_id from profile.user_profiles order by user_id`)).toEqual(
      [globexAda.user.id, globexCarol.user.id].sort().map((id) => ({ user_id: id })),
    );
    expect(await rows("globex", "admin", sql`select user_id from admin.audit_logs where action = 'user.registered' order by user_id`)).toEqual(
      [globexAda.user.id, globexCarol.user.id].sort().map((id) => ({ user_id: id })),
    );
    // The token alone picks the tenant.
    expect(await call("GET", "/profiles/me", { token: acmeAda.accessToken })).toMatchObject({ status: 200, body: { profile: { userId: acmeAda.user.id } } });
  });

  test("a token of one tenant is refused (401) on the other, whatever the route", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/auth/me"],
      ["GET", "/profiles/me"],
      ["PATCH", "/profiles/me", { bio: "moved in" }],
      ["GET", `/profiles/${globexAda.user.id}`],
      ["GET", "/payments"],
      ["POST", "/payments", { recipientEmail: "carol@example.com", amount: "1.00" }],
      ["GET", "/admin/audit-logs"],
    ];
    for (const [method, path, body] of routes) {
      const response = await call(method, path, { tenant: "globex", token: acmeAda.accessToken, body, headers: { "idempotency-key": "cross-tenant" } });
      expect([method, path, response.status, response.body?.error?.code]).toEqual([method, path, 401, "unauthorized"]);
    }
    expect((await call("GET", "/auth/me", { tenant: "acme", token: globexAda.accessToken })).status).toBe(401);
    // A refresh token of acme is unknown to globex; logging it out there revokes nothing in acme.
    expect((await call("POST", "/auth/refresh", { tenant: "globex", body: { refreshToken: acmeAda.refreshToken } })).status).toBe(401);
    expect((await call("POST", "/auth/logout", { tenant: "globex", body: { refreshToken: acmeAda.refreshToken } })).status).toBe(204);
    const refreshed = await call("POST", "/auth/refresh", { tenant: "acme", body: { refreshToken: acmeAda.refreshToken } });
    expect(refreshed.status).toBe(200);
    acmeAda = { ...acmeAda, ...refreshed.body };
    expect(await rows("globex", "profile", sql`select count(*)::int as n from profile.user_profiles where bio = 'moved in'`)).toEqual([{ n: 0 }]);
    expect(await rows("globex", "payments", sql`select count(*)::int as n from payments.payments`)).toEqual([{ n: 0 }]);
  });

  test("payments: one tenant's payment cannot be read, listed or cancelled from the other", async () => {
    const created = await call("POST", "/payments", {
      token: acmeAda.accessToken,
      body: { recipientEmail: "bob@example.com", amount: "12.50", type: "scheduled", scheduledFor: "2099-01-01T00:00:00.000Z" },
      headers: { "idempotency-key": "acme-1" },
    });
    expect(created.status).toBe(201);
    acmePaymentId = created.body.payment.id;
    // bob is a user of acme only.
    const elsewhere = await call("POST", "/payments", {
      token: globexAda.accessToken,
      body: { recipientEmail: "bob@example.com", amount: "12.50" },
      headers: { "idempotency-key": "acme-1" },
    });
    expect(elsewhere).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    expect(await call("GET", "/payments", { token: globexAda.accessToken })).toMatchObject({ status: 200, body: { items: [] } });
    for (const path of [`/payments/${acmePaymentId}`, `/payments/${acmePaymentId}/transactions`]) {
      expect([path, (await call("GET", path, { token: globexAda.accessToken })).status]).toEqual([path, 404]);
    }
    expect((await call("POST", `/payments/${acmePaymentId}/cancel`, { token: globexAda.accessToken })).status).toBe(404);
    expect(await call("GET", `/payments/${acmePaymentId}`, { token: acmeAda.accessToken })).toMatchObject({
      status: 200,
      body: { payment: { status: "pending" } },
    });
    expect(await rows("acme", "payments", sql`select id, status from payments.payments`)).toEqual([{ id: acmePaymentId, status: "pending" }]);
    expect(await rows("globex", "payments", sql`select count(*)::int as n from payments.payments`)).toEqual([{ n: 0 }]);
  });

  test("administrators see and change their own tenant only", async () => {
    // One administrator per tenant, made as an operator would: in that tenant's database.
    await rows("acme", "auth", sql`update auth.users set role = 'ADMIN' where id = ${acmeBob.user.id} returning id`);
    await rows("globex", "auth", sql`update auth.users set role = 'ADMIN' where id = ${globexCarol.user.id} returning id`);
    const login = async (tenant: string, email: string) => {
      const response = await call("POST", "/auth/login", { tenant, body: { email, password: "correct horse" } });
      expect(response.status).toBe(200);
      return response.body as Session;
    };
    acmeAdmin = await login("acme", "bob@example.com");
    globexAdmin = await login("globex", "carol@example.com");
    await settle();

    const globexAudit = await call("GET", "/admin/audit-logs?limit=100", { token: globexAdmin.accessToken });
    expect(globexAudit.status).toBe(200);
    const globexUsers = new Set(globexAudit.body.items.map((item: { userId: string | null }) => item.userId));
    expect(globexUsers.has(globexAda.user.id)).toBe(true);
    expect(globexUsers.has(acmeAda.user.id) || globexUsers.has(acmeBob.user.id)).toBe(false);
    expect(globexAudit.body.items.some((item: { action: string }) => item.action === "payment.created")).toBe(false);
    const acmeAudit = await call("GET", "/admin/audit-logs?limit=100", { token: acmeAdmin.accessToken });
    expect(acmeAudit.body.items.map((item: { action: string }) => item.action)).toContain("payment.created");
    expect(acmeAudit.body.items.some((item: { userId: string | null }) => item.userId === globexAda.user.id || item.userId === globexCarol.user.id)).toBe(
      false,
    );

    const admin = { token: globexAdmin.accessToken };
    expect((await call("GET", "/auth/users?email=bob@example.com", admin)).status).toBe(404);
    expect((await call("GET", "/auth/users?email=bob@example.com", { token: acmeAdmin.accessToken })).status).toBe(200);
    expect((await call("GET", `/auth/users/${acmeAda.user.id}`, admin)).status).toBe(404);
    expect((await call("PATCH", `/auth/users/${acmeAda.user.id}/role`, { ...admin, body: { role: "VENDOR" } })).status).toBe(404);
    expect((await call("GET", `/profiles/${acmeAda.user.id}`, admin)).status).toBe(404);
    expect((await call("GET", `/payments/${acmePaymentId}`, admin)).status).toBe(404);
    expect((await call("POST", `/payments/${acmePaymentId}/cancel`, admin)).status).toBe(404);

    expect((await call("PUT", "/admin/config/theme", { token: acmeAdmin.accessToken, body: { value: "dark" } })).status).toBe(200);
    expect((await call("GET", "/admin/config/theme", admin)).status).toBe(404);
    expect((await call("DELETE", "/admin/config/theme", admin)).status).toBe(404);
    expect(await rows("acme", "admin", sql`select key from admin.system_config where key = 'theme'`)).toEqual([{ key: "theme" }]);
    expect(await rows("acme", "auth", sql`select role from auth.users where id = ${acmeAda.user.id}`)).toEqual([{ role: "CUSTOMER" }]);
  });

  test("nothing reached the deployment's own database, and no event was dead-lettered", async () => {
    const database = await openDatabase(shared.url, { maxConnections: 1 });
    opened.push(database);
    const schemas = rowsOf(await database.db.execute(sql`select nspname from pg_namespace where nspname in ('auth', 'profile', 'payments', 'admin')`));
    expect(schemas).toEqual([]);
    for (const cell of runtime.cells.values()) expect(cell.bus.deadLetters()).toEqual([]);
    opened = [];
    await database.close();
  });
});

describe("a tenant that cannot start", () => {
  test("stops start-up in one line naming the tenant and the variable, never the URL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-tenants-"));
    try {
      const port = await closedPort();
      const file = join(dir, "tenants.json");
      writeFileSync(file, JSON.stringify({ tenants: { acme: {}, globex: { DATABASE_URL: `postgres://enclave:hunter2@127.0.0.1:${port}/globex` } } }));
      const started = createTenantsRuntime({ env: { DATA_DIR: dir, TENANTS_FILE: file, LOCAL_CRONS: "0", SEED: "none", LOG_LEVEL: "error" } });
      await expect(started).rejects.toMatchObject({
        problems: [
          `tenant globex: auth, admin, profile, payments: DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused); is the server running?`,
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
