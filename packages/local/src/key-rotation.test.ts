/**
 * Rotating the access-token signing key with no failed request, as docs/DEPLOY.md ("Rotating the
 * signing key") has it done on a stage: each step changes the AuthSigningKey secret and deploys,
 * and every service's functions get the variables the deployment derives from that secret
 * (infra/environment.ts: AUTH_SIGNING_KEY for auth, the public AUTH_PUBLIC_JWKS for all).
 *
 * A deploy replaces functions one at a time, so here each step swaps the services' apps one by one
 * (auth first when the signer changes: the worst order) while a request loop keeps calling every
 * service with tokens minted before the rotation and tokens minted during it. Not one of those
 * requests may fail. After the old key is dropped (once its tokens would have expired), tokens it
 * signed are refused with 401 on every service and the new key's keep working.
 */
import { generatePrivateJwk, type PrivateJwk, rotateSigningKeys } from "@enclave/core/keys";
import type { Hono } from "hono";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { functionEnvironment, publicJwks } from "../../../infra/environment";
import { deployedServices } from "../../../infra/services";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { testEnvironment } from "./runtime.testing";
import { localServices } from "./services";

type Service = "auth" | "profile" | "payments" | "admin";
const services: Service[] = ["auth", "profile", "payments", "admin"];

const oldKey = generatePrivateJwk();
const serviceKey = JSON.stringify(generatePrivateJwk());

let runtime: LocalRuntime;
let environment: Awaited<ReturnType<typeof testEnvironment>> | undefined;
/** The app each service is served by right now: what API Gateway would reach. */
const live = {} as Record<Service, Hono>;

/** A service's function as deployed with the AuthSigningKey secret set to `authSigningKey`. */
async function deploy(service: Service, authSigningKey: string): Promise<Hono> {
  const deployment = deployedServices.find((d) => d.manifest.name === service);
  const local = localServices.find((s) => s.module.manifest.name === service);
  if (!deployment || !local) throw new Error(`no deployment of ${service}`);
  const env: Record<string, string | undefined> = {
    ...functionEnvironment<string>(deployment, {
      app: "enclave",
      stage: "rotation",
      busName: "enclave-rotation-bus",
      databaseUrl: "pglite://memory",
      authPublicJwks: publicJwks("AuthSigningKey", authSigningKey),
      servicePublicJwks: publicJwks("ServiceSigningKey", serviceKey),
      secrets: { AuthSigningKey: authSigningKey, ServiceSigningKey: serviceKey },
      apiUrl: "http://api.rotation.test",
      schemaVersion: "0000000000000000",
    }),
    LOG_LEVEL: "error",
  };
  // The database and bus are the stage's; the variables are what this deploy gives the function.
  const ctx = await local.context({
    env,
    overrides: { database: async () => runtime.databases.get(service)!, bus: runtime.bus },
    fetch: async (request) => live.auth.fetch(request),
  });
  return local.module.createApp(ctx) as unknown as Hono;
}

/** Every service's function replaced one after another, in `order`, with requests running in between. */
async function rollOut(authSigningKey: string, order: Service[], between = () => new Promise((resolve) => setTimeout(resolve, 40))) {
  for (const service of order) {
    live[service] = await deploy(service, authSigningKey);
    await between();
  }
}

const serviceOf = (path: string): Service =>
  ({ auth: "auth", profiles: "profile", payments: "payments", admin: "admin" })[path.split("/")[1] as string] as Service;

async function call(path: string, token?: string, body?: unknown) {
  const init: RequestInit = {
    method: body ? "POST" : "GET",
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
  };
  if (body) init.body = JSON.stringify(body);
  const res = await live[serviceOf(path)].request(path, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function signIn(email: string, password: string) {
  const res = await call("/auth/login", undefined, { email, password });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { accessToken: string; refreshToken: string };
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const customerRoutes = ["/auth/me", "/profiles/me", "/payments"];
const adminRoutes = ["/auth/me", "/admin/config", `/admin/audit-logs?limit=1`];

interface Held {
  label: string;
  token: string;
  role: "customer" | "admin";
}

const customer = { email: `rotation-${Date.now()}@example.com`, password: "correct horse battery" };
const admin = { email: "admin@enclave.dev", password: "enclave-admin-dev" };

beforeAll(async () => {
  environment = await testEnvironment({ SEED: "development", AUTH_SIGNING_KEY: JSON.stringify(oldKey), SERVICE_SIGNING_KEY: serviceKey });
  runtime = await createLocalRuntime({ env: environment.env });
  await rollOut(JSON.stringify(oldKey), services);
  const registered = await call("/auth/register", undefined, { ...customer, name: "Rotation" });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  await environment?.dispose();
});

describe("rotating the auth signing key", () => {
  test("no request fails across the overlap; after the old key is dropped its tokens are refused with 401 everywhere", async () => {
    const oldValue = JSON.stringify(oldKey);
    const beforeCustomer = await signIn(customer.email, customer.password);
    const beforeAdmin = await signIn(admin.email, admin.password);
    expect(kidOf(beforeCustomer.accessToken)).toBe(oldKey.kid);

    const held: Held[] = [
      { label: "customer, minted before the rotation", token: beforeCustomer.accessToken, role: "customer" },
      { label: "admin, minted before the rotation", token: beforeAdmin.accessToken, role: "admin" },
    ];
    const failures: string[] = [];
    const served: Record<string, number> = {};
    let phase = "before";
    let running = true;
    let rounds = 0;
    const loop = (async () => {
      while (running) {
        rounds++;
        for (const { label, token, role } of [...held]) {
          for (const path of role === "admin" ? adminRoutes : customerRoutes) {
            const res = await call(path, token);
            served[phase] = (served[phase] ?? 0) + 1;
            if (res.status !== 200) failures.push(`${phase}: ${path} with the ${label} token answered ${res.status} ${JSON.stringify(res.body)}`);
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    /** Lets the loop serve `count` more requests in the current step, however slow the machine. */
    const serve = async (count: number) => {
      const target = (served[phase] ?? 0) + count;
      while ((served[phase] ?? 0) < target && failures.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    await serve(10);

    // 1. Publish the new key beside the old one, which still signs.
    const published = rotateSigningKeys(oldValue, "add");
    const newKey = (JSON.parse(published) as { keys: PrivateJwk[] }).keys[1] as PrivateJwk;
    phase = "publish both";
    await rollOut(published, ["profile", "payments", "admin", "auth"], () => serve(5));
    const jwks = (await call("/auth/.well-known/jwks.json")).body as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([oldKey.kid, newKey.kid]);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
    const during = await signIn(customer.email, customer.password);
    expect(kidOf(during.accessToken)).toBe(oldKey.kid);
    held.push({ label: "customer, minted while both keys were published", token: during.accessToken, role: "customer" });

    // 2. Switch the signer. Auth goes first: it signs with the new key while the other services
    // still run the previous deploy, which already has the new key.
    const switched = rotateSigningKeys(published, "promote");
    phase = "switch signer";
    live.auth = await deploy("auth", switched);
    const after = await signIn(customer.email, customer.password);
    const afterAdmin = await signIn(admin.email, admin.password);
    expect(kidOf(after.accessToken)).toBe(newKey.kid);
    held.push(
      { label: "customer, minted by the new key", token: after.accessToken, role: "customer" },
      { label: "admin, minted by the new key", token: afterAdmin.accessToken, role: "admin" },
    );
    await serve(5);
    await rollOut(switched, ["profile", "payments", "admin"], () => serve(5));
    // A session started before the rotation refreshes into a token of the new key.
    const refreshed = await call("/auth/refresh", undefined, { refreshToken: beforeCustomer.refreshToken });
    expect(refreshed.status).toBe(200);
    expect(kidOf(refreshed.body.accessToken as string)).toBe(newKey.kid);
    held.push({ label: "customer, refreshed from a pre-rotation session", token: refreshed.body.accessToken as string, role: "customer" });
    phase = "overlap";
    await serve(20);

    // 3. After the longest token lifetime the old key's tokens have expired: nobody holds one that
    // works any more. The loop keeps only tokens of the new key, and the old key is dropped.
    held.splice(0, held.length, ...held.filter((h) => kidOf(h.token) === newKey.kid));
    // The round under way still holds the old list: the drop starts once a round has begun with the new one.
    const round = rounds;
    while (rounds === round) await new Promise((resolve) => setTimeout(resolve, 5));
    const dropped = rotateSigningKeys(switched, "drop");
    phase = "drop old";
    await rollOut(dropped, ["auth", "profile", "payments", "admin"], () => serve(5));
    await serve(10);
    running = false;
    await loop;

    expect(failures).toEqual([]);
    console.log(`requests served during each step of the rotation: ${JSON.stringify(served)}`);
    for (const step of ["before", "publish both", "switch signer", "overlap", "drop old"]) expect(served[step], step).toBeGreaterThan(0);
    expect(Object.values(served).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);

    expect(((await call("/auth/.well-known/jwks.json")).body as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toEqual([newKey.kid]);
    for (const [token, routes] of [
      [beforeCustomer.accessToken, customerRoutes],
      [during.accessToken, customerRoutes],
      [beforeAdmin.accessToken, adminRoutes],
    ] as const) {
      for (const path of routes) {
        const res = await call(path, token);
        expect(res.status, `${path} with an old-key token`).toBe(401);
        expect(res.body).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      }
    }
    for (const path of customerRoutes) expect((await call(path, after.accessToken)).status, path).toBe(200);
    for (const path of adminRoutes) expect((await call(path, afterAdmin.accessToken)).status, path).toBe(200);
  }, 120_000);
});
