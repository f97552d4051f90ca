import { createTokenVerifier, type MemoryBus, memoryBus } from "@enclave/core";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing";
import { type AuthContext, defaultThrottle } from "./context";
import { createAuthApp } from "./routes";
import { generateSigningJwk, importSigningKey } from "./tokens";

export interface AuthHarness {
  ctx: AuthContext;
  app: ReturnType<typeof createAuthApp>;
  database: TestDatabase;
  bus: MemoryBus;
  dispose(): Promise<void>;
}

/** A migrated database, a fresh signing key and an in-memory bus around the auth app. */
export async function createAuthHarness(overrides: Partial<AuthContext> = {}): Promise<AuthHarness> {
  const database = await createTestDatabase(["auth"]);
  const key = await importSigningKey(await generateSigningJwk());
  const bus = memoryBus();
  const tokens = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
  const ctx: AuthContext = {
    app: "enclave",
    stage: "test",
    database: async () => database,
    bus,
    verifier: createTokenVerifier({ issuer: tokens.issuer, audience: tokens.audience, jwks: { keys: [key.publicJwk] } }),
    signingKey: async () => key,
    publicJwk: key.publicJwk,
    tokens,
    refreshTtlSeconds: 30 * 86_400,
    // Low scrypt cost keeps tests fast; deployed stages always use 17.
    passwordCost: 10,
    throttle: defaultThrottle,
    ...overrides,
  };
  return { ctx, app: createAuthApp(ctx), database, bus, dispose: () => database.dispose() };
}

/** JSON request helper: `call(app, "POST", "/auth/register", body, token)`. */
export async function call(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  headers: Record<string, string> = {},
) {
  const response = await app.request(path, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}
