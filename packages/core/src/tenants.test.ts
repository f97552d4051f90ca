import { pgSchema } from "drizzle-orm/pg-core";
import { decodeJwt } from "jose";
import { describe, expect, test } from "vitest";
import { parseCommonConfig } from "./config";
import { contextFromConfig } from "./context";
import { outboxTable } from "./events/tables";
import { importSigningKey, signAccessToken } from "./http/access-token";
import { createTokenVerifier } from "./http/auth";
import { generatePrivateJwk, publicJwksJson } from "./keys";
import { parseTenantRegistry, tenantContext, tenantEnv } from "./tenants";

const user = { id: "0190a0a0-0000-7000-8000-000000000001", role: "CUSTOMER" as const };
const settings = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };

describe("tenant registry", () => {
  test("a tenant maps to one DATABASE_URL or to per-service URLs, in the file's order", () => {
    const registry = parseTenantRegistry(
      "TENANTS_FILE",
      JSON.stringify({
        tenants: {
          acme: { DATABASE_URL: "postgres://db/acme" },
          globex: { AUTH_DATABASE_URL: "postgres://db/globex_auth", PAYMENTS_DATABASE_URL: "pglite://memory" },
        },
      }),
    );
    expect([...registry.tenants]).toEqual([
      ["acme", { DATABASE_URL: "postgres://db/acme" }],
      ["globex", { AUTH_DATABASE_URL: "postgres://db/globex_auth", PAYMENTS_DATABASE_URL: "pglite://memory" }],
    ]);
  });

  test.each([
    ["not json", 'TENANTS_FILE: must be JSON: {"tenants": {"<id>": {"DATABASE_URL": "…"}}}'],
    [JSON.stringify({ acme: {} }), 'TENANTS_FILE: must be {"tenants": {"<id>": {"DATABASE_URL": "…"}}}'],
    [JSON.stringify({ tenants: {} }), "TENANTS_FILE: names no tenant"],
    [JSON.stringify({ tenants: { Acme: {} } }), 'TENANTS_FILE: tenant "Acme": the id must be lower-case letters, digits and dashes (at most 40)'],
    [
      JSON.stringify({ tenants: { acme: { AUTH_DATABSE_URL: "postgres://x/y" } } }),
      'TENANTS_FILE: tenant "acme": "AUTH_DATABSE_URL" is not DATABASE_URL or <SERVICE>_DATABASE_URL',
    ],
    [JSON.stringify({ tenants: { acme: { DATABASE_URL: 5 } } }), 'TENANTS_FILE: tenant "acme": DATABASE_URL: must be a URL'],
    [
      JSON.stringify({ tenants: { acme: { DATABASE_URL: "mysql://secret@x/y" } } }),
      'TENANTS_FILE: tenant "acme": DATABASE_URL: must be pglite://memory, pglite://<dir>, postgres://… or a Neon URL',
    ],
  ])("%s is refused naming the file and the tenant, never a URL", (json, problem) => {
    expect(() => parseTenantRegistry("TENANTS_FILE", json)).toThrow(expect.objectContaining({ problems: [problem] }));
  });

  test("a tenant's environment keeps no database variable of the deployment's", () => {
    const env = { DATABASE_URL: "postgres://db/shared", PROFILE_DATABASE_URL: "postgres://db/profile", STAGE: "dev", LOG_LEVEL: "info" };
    expect(tenantEnv(env, { AUTH_DATABASE_URL: "postgres://db/a_auth" })).toEqual({
      STAGE: "dev",
      LOG_LEVEL: "info",
      AUTH_DATABASE_URL: "postgres://db/a_auth",
    });
  });
});

describe("the tid claim", async () => {
  const privateJwk = generatePrivateJwk();
  const key = await importSigningKey(privateJwk);
  const jwks = { keys: [key.publicJwk] };
  const verifier = (tenant?: string) => createTokenVerifier({ ...settings, jwks, ...(tenant ? { tenant } : {}) });
  const forAcme = await signAccessToken(key, { ...settings, tenant: "acme" }, user);
  const untenanted = await signAccessToken(key, settings, user);

  test("auth signs its tenant as tid, and nothing outside a tenant", () => {
    expect(decodeJwt(forAcme).tid).toBe("acme");
    expect(decodeJwt(untenanted)).not.toHaveProperty("tid");
  });

  test("a tenant's verifier accepts its tenant's tokens only", async () => {
    await expect(verifier("acme").verify(forAcme)).resolves.toMatchObject({ kind: "user", userId: user.id });
    await expect(verifier("globex").verify(forAcme)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(verifier("acme").verify(untenanted)).rejects.toMatchObject({ code: "unauthorized" });
  });

  test("a verifier serving no tenant refuses a tenant's token and accepts the others", async () => {
    await expect(verifier().verify(forAcme)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(verifier().verify(untenanted)).resolves.toMatchObject({ kind: "user", userId: user.id });
  });

  test("tenantContext binds a service's verifier and auth's token settings to the tenant", async () => {
    const config = parseCommonConfig("profile", { DATABASE_URL: "pglite://memory", AUTH_PUBLIC_JWKS: publicJwksJson(privateJwk) });
    const base = { ...contextFromConfig(config, { outbox: outboxTable(pgSchema("profile")) }), tokens: settings };
    const bound = tenantContext(base, config, "acme");
    expect(bound.tokens).toEqual({ ...settings, tenant: "acme" });
    await expect(bound.verifier.verify(forAcme)).resolves.toMatchObject({ userId: user.id });
    await expect(bound.verifier.verify(untenanted)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(base.verifier.verify(forAcme)).rejects.toMatchObject({ code: "unauthorized" });
  });
});
