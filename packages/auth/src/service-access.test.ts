import { memoryBus } from "@enclave/core";
import { createServiceTokenSigner, SERVICE_TOKEN_ALG, SERVICE_TOKEN_TYPE } from "@enclave/core/http/service-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { createTestDatabase, type TestDatabase } from "@enclave/core/testing/database";
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readAuthConfig } from "./config";
import { type AuthContext, authContextFromConfig } from "./context";
import { createAuthApp } from "./routes";
import { call } from "./testing";

async function serviceKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(SERVICE_TOKEN_ALG, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid };
}
const publicJwks = (jwk: JWK) => {
  const { d: _private, ...rest } = jwk;
  return JSON.stringify({ keys: [{ ...rest, alg: SERVICE_TOKEN_ALG }] });
};

let database: TestDatabase;
let serviceJwk: JWK;
let ctx: AuthContext;
let app: ReturnType<typeof createAuthApp>;
let userId: string;
let customerToken: string;

/** Auth built from configuration exactly as deployed, with SERVICE_PUBLIC_JWKS set. */
function authFromEnv(extra: Record<string, string>, signingJwk: JWK) {
  const config = readAuthConfig({ AUTH_SIGNING_KEY: JSON.stringify(signingJwk), DATABASE_URL: "pglite://memory", LOG_LEVEL: "error", ...extra });
  return authContextFromConfig(config, { database: async () => database, bus: memoryBus(), passwordCost: 10 });
}

beforeAll(async () => {
  database = await createTestDatabase(["auth"]);
  serviceJwk = await serviceKey("svc-1");
  ctx = authFromEnv({ SERVICE_PUBLIC_JWKS: publicJwks(serviceJwk) }, generatePrivateJwk());
  app = createAuthApp(ctx);
  const registered = await call(app, "POST", "/auth/register", { email: "Payee@Example.com", password: "password123", name: "Payee" });
  expect(registered.status).toBe(201);
  userId = registered.body.user.id;
  customerToken = registered.body.accessToken;
});
afterAll(() => database?.dispose());

const mint = (audience = "auth", options: { now?: () => number } = {}) =>
  createServiceTokenSigner({ service: "payments", privateJwk: serviceJwk, ...options }).mint(audience);

describe("service tokens on routes open to services", () => {
  test("look up a user by email", async () => {
    const res = await call(app, "GET", "/auth/users?email=payee%40example.com", undefined, await mint());
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.user).toMatchObject({ id: userId, email: "Payee@Example.com", role: "CUSTOMER" });
    expect(res.body.user.passwordHash).toBeUndefined();
  });

  test("look up a user by id", async () => {
    const res = await call(app, "GET", `/auth/users/${userId}`, undefined, await mint());
    expect(res.status).toBe(200);
    expect(res.body.user.id).toBe(userId);
  });

  test("an unknown email is 404, a bad email 400", async () => {
    const token = await mint();
    expect((await call(app, "GET", "/auth/users?email=nobody%40example.com", undefined, token)).status).toBe(404);
    const bad = await call(app, "GET", "/auth/users?email=not-an-email", undefined, token);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
  });

  test("a customer's access token is still refused there", async () => {
    const res = await call(app, "GET", `/auth/users/${userId}`, undefined, customerToken);
    expect(res.status).toBe(403);
  });
});

describe("service tokens elsewhere", () => {
  test("a route for signed-in users refuses a service (403)", async () => {
    const res = await call(app, "GET", "/auth/me", undefined, await mint());
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("forbidden");
  });

  test("an ADMIN-only route refuses a service (403)", async () => {
    const res = await call(app, "PATCH", `/auth/users/${userId}/role`, { role: "ADMIN" }, await mint());
    expect(res.status).toBe(403);
    const after = await call(app, "GET", `/auth/users/${userId}`, undefined, await mint());
    expect(after.body.user.role).toBe("CUSTOMER");
  });
});

describe("service tokens that must be refused (401)", () => {
  const expectUnauthorized = async (token: string) => {
    const res = await call(app, "GET", `/auth/users/${userId}`, undefined, token);
    expect(res.status, JSON.stringify(res.body)).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
  };

  test("expired", async () => {
    await expectUnauthorized(await mint("auth", { now: () => Date.now() - 120_000 }));
  });

  test("addressed to another service", async () => {
    await expectUnauthorized(await mint("profile"));
  });

  test("signed with a key that is not the stage's", async () => {
    const other = await serviceKey("svc-1");
    await expectUnauthorized(await createServiceTokenSigner({ service: "payments", privateJwk: other }).mint("auth"));
  });

  test("valid signature but a lifetime longer than 60 s", async () => {
    const key = await importJWK(serviceJwk, SERVICE_TOKEN_ALG);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: SERVICE_TOKEN_ALG, typ: SERVICE_TOKEN_TYPE, kid: "svc-1" })
      .setIssuer("service:payments")
      .setSubject("payments")
      .setAudience("auth")
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .setJti("a")
      .sign(key);
    await expectUnauthorized(token);
  });

  test("issuer that does not match the subject", async () => {
    const key = await importJWK(serviceJwk, SERVICE_TOKEN_ALG);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: SERVICE_TOKEN_ALG, typ: SERVICE_TOKEN_TYPE, kid: "svc-1" })
      .setIssuer("service:admin")
      .setSubject("payments")
      .setAudience("auth")
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .setJti("b")
      .sign(key);
    await expectUnauthorized(token);
  });

  test("another algorithm (HS256)", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256", typ: SERVICE_TOKEN_TYPE, kid: "svc-1" })
      .setIssuer("service:payments")
      .setSubject("payments")
      .setAudience("auth")
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .setJti("c")
      .sign(new TextEncoder().encode("a-shared-secret-that-must-not-work"));
    await expectUnauthorized(token);
  });

  test("auth without SERVICE_PUBLIC_JWKS admits no service", async () => {
    const plain = createAuthApp(authFromEnv({}, generatePrivateJwk()));
    const res = await call(plain, "GET", `/auth/users/${userId}`, undefined, await mint());
    expect(res.status).toBe(401);
  });
});

test("SERVICE_PUBLIC_JWKS that is not a JWKS stops start-up", async () => {
  const signing = JSON.stringify(generatePrivateJwk());
  expect(() => readAuthConfig({ AUTH_SIGNING_KEY: signing, DATABASE_URL: "pglite://memory", SERVICE_PUBLIC_JWKS: "{}" })).toThrow(/SERVICE_PUBLIC_JWKS/);
});
