import { eq } from "drizzle-orm";
import { usersTable } from "../packages/auth/src/auth.sql";
import { call, createAuthHarness } from "../packages/auth/src/testing";

const N = Number(process.env.BENCH_READS ?? 2000);

/**
 * Throughput of two operations measured in alternating rounds, so load from anything else on
 * the machine affects both alike.
 */
async function interleaved(n: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  for (let i = 0; i < 200; i++) {
    await a();
    await b();
  }
  const rounds = 20;
  const elapsed = [0, 0];
  for (let round = 0; round < rounds; round++) {
    for (const [index, run] of [a, b].entries()) {
      const started = performance.now();
      for (let i = 0; i < n / rounds; i++) await run();
      elapsed[index] = (elapsed[index] as number) + performance.now() - started;
    }
  }
  return [n / ((elapsed[0] as number) / 1000), n / ((elapsed[1] as number) / 1000)];
}

/** Round trips per auth route, and warm read throughput of GET /auth/me against the raw driver. */
export async function measureAuth() {
  const h = await createAuthHarness();
  try {
    const stats = h.database.stats;
    const roundTrips: Record<string, number> = {};
    const count = async (label: string, run: () => Promise<{ status: number }>, expected: number) => {
      const before = stats.queries;
      const response = await run();
      if (response.status !== expected) throw new Error(`${label} answered ${response.status}`);
      roundTrips[label] = stats.queries - before;
      return response;
    };
    const admin = await h.ctx.database();
    const reg = (await count(
      "POST /auth/register",
      () => call(h.app, "POST", "/auth/register", { email: "bench@enclave.dev", password: "bench-password", name: "Bench" }),
      201,
    )) as Awaited<ReturnType<typeof call>>;
    const login = (await count(
      "POST /auth/login",
      () => call(h.app, "POST", "/auth/login", { email: "bench@enclave.dev", password: "bench-password" }),
      200,
    )) as Awaited<ReturnType<typeof call>>;
    await count("POST /auth/login (wrong password)", () => call(h.app, "POST", "/auth/login", { email: "bench@enclave.dev", password: "wrong-password" }), 401);
    const refreshed = (await count(
      "POST /auth/refresh",
      () => call(h.app, "POST", "/auth/refresh", { refreshToken: login.body.refreshToken }),
      200,
    )) as Awaited<ReturnType<typeof call>>;
    await count("POST /auth/refresh (reused token)", () => call(h.app, "POST", "/auth/refresh", { refreshToken: login.body.refreshToken }), 401);
    await count("POST /auth/logout", () => call(h.app, "POST", "/auth/logout", { refreshToken: refreshed.body.refreshToken }), 204);
    const token = reg.body.accessToken as string;
    await count("GET /auth/me", () => call(h.app, "GET", "/auth/me", undefined, token), 200);
    await admin.db.update(usersTable).set({ role: "ADMIN" }).where(eq(usersTable.id, reg.body.user.id));
    const adminLogin = await call(h.app, "POST", "/auth/login", { email: "bench@enclave.dev", password: "bench-password" });
    const adminToken = adminLogin.body.accessToken as string;
    await count("GET /auth/users/{id}", () => call(h.app, "GET", `/auth/users/${reg.body.user.id}`, undefined, adminToken), 200);
    await count("GET /auth/users?email=", () => call(h.app, "GET", "/auth/users?email=bench@enclave.dev", undefined, adminToken), 200);
    const other = await call(h.app, "POST", "/auth/register", { email: "other@enclave.dev", password: "bench-password", name: "Other" });
    await count("PATCH /auth/users/{id}/role", () => call(h.app, "PATCH", `/auth/users/${other.body.user.id}/role`, { role: "VENDOR" }, adminToken), 200);
    await count("GET /auth/.well-known/jwks.json", () => call(h.app, "GET", "/auth/.well-known/jwks.json"), 200);

    // Warm reads: the whole route (token verification, validation, query, JSON) against the
    // same SQL sent straight to the driver, sequentially, in this process.
    const query = admin.db.select().from(usersTable).where(eq(usersTable.id, reg.body.user.id)).toSQL();
    const request = async () => (await h.app.request("/auth/me", { headers: { authorization: `Bearer ${token}` } })).text();
    const [routePerSecond, driverPerSecond] = await interleaved(N, request, () => admin.rawQuery(query.sql, query.params));
    return { roundTrips, warmRead: { driver: admin.kind, routePerSecond, driverPerSecond, ratio: routePerSecond / driverPerSecond } };
  } finally {
    await h.dispose();
  }
}
