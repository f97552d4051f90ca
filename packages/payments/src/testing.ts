import { type BusEntry, eventHandler, type MemoryBus, type Role, uuidv7 } from "@enclave/core";
import { createServiceTokenSigner, createServiceTokenVerifier } from "@enclave/core/http/service-token";
import { testServiceContext } from "@enclave/core/testing/context";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { testUserKeys } from "@enclave/core/testing/users";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { createAuthClient, type DirectoryUser } from "./auth-client";
import { defaultProcessing, IDEMPOTENCY_TTL_MS, type PaymentsContext } from "./context";
import { paymentsJobs } from "./jobs";
import { paymentsInbox, paymentsOutbox } from "./payments.sql";
import { simulatorProvider } from "./provider";
import { createPaymentsApp } from "./routes";

export { call } from "@enclave/core/testing/http";

/**
 * Auth's user lookups as payments sees them over HTTP: it checks the service token (audience
 * "auth", like the real auth service) and can be switched down, made to fail once, or slow.
 */
export interface FakeAuth {
  users: Map<string, DirectoryUser>;
  /** "down": every call answers 503; "fail-once": the next call answers 502; "hang": never answers. */
  mode: "up" | "down" | "fail-once" | "hang";
  /** Requests received, with the caller's principal. */
  calls: { path: string; service: string | null; requestId: string | null }[];
  fetch(request: Request): Promise<Response>;
}

function fakeAuth(jwks: { keys: JWK[] }): FakeAuth {
  const verifier = createServiceTokenVerifier({ audience: "auth", jwks });
  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const auth: FakeAuth = {
    users: new Map(),
    mode: "up",
    calls: [],
    async fetch(request) {
      const url = new URL(request.url);
      const token = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
      let service: string | null = null;
      if (token) {
        const principal = await verifier.verify(token).catch(() => undefined);
        if (principal?.kind === "service") service = principal.service;
      }
      auth.calls.push({ path: `${url.pathname}${url.search}`, service, requestId: request.headers.get("x-request-id") });
      if (auth.mode === "hang") return new Promise<Response>(() => {});
      if (auth.mode === "down") return json(503, { error: { code: "unavailable", message: "down" } });
      if (auth.mode === "fail-once") {
        auth.mode = "up";
        return json(502, { error: { code: "internal", message: "bad gateway" } });
      }
      if (!service) return json(401, { error: { code: "unauthorized", message: "no" } });
      if (url.pathname !== "/auth/users") return json(404, { error: { code: "not_found", message: "no route" } });
      const user = auth.users.get((url.searchParams.get("email") ?? "").toLowerCase());
      if (!user) return json(404, { error: { code: "not_found", message: "No user has this email." } });
      return json(200, { user: { ...user, emailVerified: false, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() } });
    },
  };
  return auth;
}

export interface TestUser {
  id: string;
  email: string;
  role: Role;
  token: string;
}

export interface PaymentsHarness {
  ctx: PaymentsContext;
  app: ReturnType<typeof createPaymentsApp>;
  database: TestDatabase;
  bus: MemoryBus;
  auth: FakeAuth;
  provider: ReturnType<typeof simulatorProvider>;
  /** Moves the service's clock (ms from real time). */
  clock: { offsetMs: number };
  /** A user known to auth, with an access token. */
  user(name: string, role?: Role): Promise<TestUser>;
  /** Delivers every payment.created on the bus not delivered yet to the `process` consumer. */
  deliverCreated(): Promise<number>;
  /** Events on the bus of one type. */
  events(type: string): BusEntry[];
  dispose(): Promise<void>;
}

/** A migrated payments database, an in-memory bus, a fake auth and the simulator around the payments app. */
export async function createPaymentsHarness(overrides: Partial<PaymentsContext> = {}): Promise<PaymentsHarness> {
  const database = await createTestDatabase(["payments"]);
  const userKeys = await testUserKeys();
  const base = testServiceContext("payments", paymentsOutbox, { database, inbox: paymentsInbox, verifier: userKeys.verifier });
  const bus = base.bus;
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const serviceJwk = { ...(await exportJWK(privateKey)), kid: "stage-service-key" };
  const { d: _private, ...servicePublic } = serviceJwk;
  const auth = fakeAuth({ keys: [{ ...servicePublic, alg: "ES256" }] });
  const provider = simulatorProvider();
  const clock = { offsetMs: 0 };
  const ctx: PaymentsContext = {
    ...base,
    users: createAuthClient({
      baseUrl: "http://auth.test",
      signer: createServiceTokenSigner({ service: "payments", privateJwk: serviceJwk }),
      fetch: (request) => auth.fetch(request),
      timeoutMs: 200,
      retryDelayMs: 1,
    }),
    provider,
    now: () => new Date(Date.now() + clock.offsetMs),
    processing: defaultProcessing,
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
    ...overrides,
  };
  const consume = processConsumer(ctx);
  let delivered = 0;
  return {
    ctx,
    app: createPaymentsApp(ctx),
    database,
    bus,
    auth,
    provider,
    clock,
    async user(name, role = "CUSTOMER") {
      const id = uuidv7();
      const email = `${name.toLowerCase()}-${id.slice(-8)}@example.com`;
      auth.users.set(email, { id, email, name, role });
      return { id, email, role, token: await userKeys.sign({ id, role }) };
    },
    async deliverCreated() {
      const pending = bus.entries.slice(delivered);
      delivered = bus.entries.length;
      let count = 0;
      for (const entry of pending) {
        if (entry.detailType !== "payment.created") continue;
        await consume(entry.detail, { attempt: 1 });
        count++;
      }
      return count;
    },
    events: (type) => bus.entries.filter((entry) => entry.detailType === type),
    dispose: () => database.dispose(),
  };
}

/** The payment.created subscription as the bus calls it. */
export const processConsumer = (ctx: PaymentsContext) => eventHandler("process", paymentsJobs.process, ctx);
