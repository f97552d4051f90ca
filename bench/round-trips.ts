/**
 * Database round trips per route, for every route of API.md, counted on the driver (the service
 * database's `stats.queries`: one per statement sent) while the local runtime answers the route
 * in-process. Background work is drained before each route and event deliveries are held until it
 * has answered, so what is counted is what the request itself sent (the relay's mark-sent after a
 * commit included, as it runs in the request).
 * Budget: at most 3 for a write route, at most 2 for a read route.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuthContext } from "@enclave/auth";
import type { Database } from "@enclave/core";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import type { LocalService } from "@enclave/local/registry";
import { createLocalRuntime } from "@enclave/local/runtime";
import { localServices } from "@enclave/local/services";
import { sql } from "drizzle-orm";

export interface RouteTrips {
  route: string;
  service: string;
  kind: "read" | "write";
  status: number;
  roundTrips: number;
}

export async function measureRoundTrips(): Promise<{ driver: string; routes: RouteTrips[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-bench-trips-"));
  const servers: TestDatabase[] = [];
  const env: Record<string, string> = { DATA_DIR: dataDir, SEED: "none", LOCAL_CRONS: "0", LOG_LEVEL: "error" };
  if (testServerUrl) {
    for (const { module } of localServices) {
      const database = await createTestDatabase([module.manifest.name]);
      servers.push(database);
      env[`${module.manifest.name.toUpperCase()}_DATABASE_URL`] = database.url;
    }
  }
  const services: LocalService[] = localServices.map((service) =>
    service.module.manifest.name !== "auth"
      ? service
      : { ...service, context: async (local) => ({ ...((await service.context(local)) as AuthContext), passwordCost: 10 }) as AuthContext },
  );
  const runtime = await createLocalRuntime({ env, services });
  const routes: RouteTrips[] = [];
  try {
    const request = async (method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}) => {
      const response = await runtime.app.request(path, {
        method,
        headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    };
    const database = (service: string) => runtime.databases.get(service) as Database;
    const count = async (
      service: string,
      kind: "read" | "write",
      method: string,
      path: string,
      label: string,
      expected: number,
      body?: unknown,
      token?: string,
      headers?: Record<string, string>,
    ) => {
      await runtime.bus.drain();
      // Deliveries wait until the route has answered: in the cloud a consumer is another Lambda,
      // and its statements are not the route's.
      const bus = runtime.bus as unknown as { schedule(delivery: unknown, ms: number): void };
      const schedule = bus.schedule;
      const held: unknown[] = [];
      bus.schedule = (delivery: unknown) => void held.push(delivery);
      const before = database(service).stats.queries;
      const response = await request(method, path, body, token, headers).finally(() => {
        bus.schedule = schedule;
      });
      const after = database(service).stats.queries;
      for (const delivery of held) schedule.call(bus, delivery, 0);
      if (response.status !== expected) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
      routes.push({ route: `${method} ${label}`, service, kind, status: response.status, roundTrips: after - before });
      return response.body;
    };

    const password = "bench-password";
    const ada = (await count("auth", "write", "POST", "/auth/register", "/auth/register", 201, { email: "ada@bench.enclave.dev", password, name: "Ada" })) as {
      accessToken: string;
      user: { id: string };
    };
    const bob = (await request("POST", "/auth/register", { email: "bob@bench.enclave.dev", password, name: "Bob" })).body as { user: { id: string } };
    await request("POST", "/auth/register", { email: "root@bench.enclave.dev", password, name: "Root" });
    await database("auth").db.execute(sql`update auth.users set role = 'ADMIN' where email = 'root@bench.enclave.dev'`);
    const login = (await count("auth", "write", "POST", "/auth/login", "/auth/login", 200, { email: "ada@bench.enclave.dev", password })) as {
      refreshToken: string;
    };
    const refreshed = (await count("auth", "write", "POST", "/auth/refresh", "/auth/refresh", 200, { refreshToken: login.refreshToken })) as {
      refreshToken: string;
    };
    await count("auth", "write", "POST", "/auth/logout", "/auth/logout", 204, { refreshToken: refreshed.refreshToken });
    const token = ada.accessToken;
    const admin = ((await request("POST", "/auth/login", { email: "root@bench.enclave.dev", password })).body as { accessToken: string }).accessToken;
    await count("auth", "read", "GET", "/auth/me", "/auth/me", 200, undefined, token);
    await count("auth", "read", "GET", `/auth/users/${bob.user.id}`, "/auth/users/{id}", 200, undefined, admin);
    await count("auth", "read", "GET", "/auth/users?email=bob@bench.enclave.dev", "/auth/users?email=", 200, undefined, admin);
    await count("auth", "write", "PATCH", `/auth/users/${bob.user.id}/role`, "/auth/users/{id}/role", 200, { role: "VENDOR" }, admin);
    await count("auth", "read", "GET", "/auth/.well-known/jwks.json", "/auth/.well-known/jwks.json", 200);

    await count("profile", "read", "GET", "/profiles/me", "/profiles/me", 200, undefined, token);
    await count("profile", "write", "PATCH", "/profiles/me", "/profiles/me", 200, { bio: "Counting." }, token);
    await count("profile", "read", "GET", `/profiles/${ada.user.id}`, "/profiles/{userId}", 200, undefined, token);

    const created = (await count(
      "payments",
      "write",
      "POST",
      "/payments",
      "/payments",
      201,
      { recipientEmail: "bob@bench.enclave.dev", amount: "12.50" },
      token,
      { "idempotency-key": "trips-1" },
    )) as { payment: { id: string } };
    await count("payments", "read", "GET", "/payments", "/payments", 200, undefined, token);
    await count("payments", "read", "GET", `/payments/${created.payment.id}`, "/payments/{id}", 200, undefined, token);
    await count("payments", "read", "GET", `/payments/${created.payment.id}/transactions`, "/payments/{id}/transactions", 200, undefined, token);
    const scheduled = (
      await request(
        "POST",
        "/payments",
        { recipientEmail: "bob@bench.enclave.dev", amount: "3.00", type: "scheduled", scheduledFor: new Date(Date.now() + 86_400_000).toISOString() },
        token,
        {
          "idempotency-key": "trips-2",
        },
      )
    ).body as { payment: { id: string } };
    await count("payments", "write", "POST", `/payments/${scheduled.payment.id}/cancel`, "/payments/{id}/cancel", 200, undefined, token);

    await count("admin", "read", "GET", "/admin/audit-logs", "/admin/audit-logs", 200, undefined, admin);
    await count("admin", "write", "PUT", "/admin/config/bench.flag", "/admin/config/{key}", 200, { value: true, description: "bench" }, admin);
    await count("admin", "read", "GET", "/admin/config", "/admin/config", 200, undefined, admin);
    await count("admin", "read", "GET", "/admin/config/bench.flag", "/admin/config/{key}", 200, undefined, admin);
    await count("admin", "write", "DELETE", "/admin/config/bench.flag", "/admin/config/{key}", 204, undefined, admin);

    for (const [service, prefix] of [
      ["auth", "/auth"],
      ["profile", "/profiles"],
      ["payments", "/payments"],
      ["admin", "/admin"],
    ] as const) {
      await count(service, "read", "GET", `${prefix}/health`, `${prefix}/health`, 200);
    }
    return { driver: database("auth").kind, routes };
  } finally {
    await runtime.close();
    for (const server of servers) await server.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
