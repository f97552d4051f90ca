import { pgSchema } from "drizzle-orm/pg-core";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, test } from "vitest";
import { parseCommonConfig } from "./config";
import { contextFromConfig } from "./context";
import { AppError } from "./errors";
import { memoryBus } from "./events/memory";
import { outboxTable } from "./events/tables";
import { ACCESS_TOKEN_ALG } from "./http/auth";
import { createServiceTokenSigner } from "./http/service-token";
import { uuidv7 } from "./ids";
import { generatePrivateJwk, publicJwksJson } from "./keys";

const outbox = outboxTable(pgSchema("things"));

describe("contextFromConfig", () => {
  test("connects nothing at start and opens the database once, on first use", async () => {
    // Nothing listens on port 1: opening a pool must not connect, so this succeeds.
    const ctx = contextFromConfig(parseCommonConfig("things", { DATABASE_URL: "postgres://u@127.0.0.1:1/db", STAGE: "test" }), {
      outbox,
      bus: memoryBus(),
    });
    expect(ctx.app).toBe("enclave");
    expect(ctx.stage).toBe("test");
    const [a, b] = await Promise.all([ctx.database(), ctx.database()]);
    expect(a).toBe(b);
    expect(a.kind).toBe("pg");
    expect(await ctx.database()).toBe(a);
    await a.close();
  });

  test("verifies access tokens with the keys of AUTH_PUBLIC_JWKS, issuer and audience from config", async () => {
    const { publicKey, privateKey } = await generateKeyPair(ACCESS_TOKEN_ALG);
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "k", alg: ACCESS_TOKEN_ALG }] };
    const config = parseCommonConfig("things", {
      DATABASE_URL: "pglite://memory",
      AUTH_PUBLIC_JWKS: JSON.stringify(jwks),
      JWT_ISSUER: "issuer-x",
      JWT_AUDIENCE: "aud-x",
      LOG_LEVEL: "error",
    });
    const ctx = contextFromConfig(config, { outbox, bus: memoryBus() });
    const userId = uuidv7();
    const sign = (iss: string) =>
      new SignJWT({ role: "VENDOR" })
        .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: "k" })
        .setSubject(userId)
        .setIssuer(iss)
        .setAudience("aud-x")
        .setIssuedAt()
        .setExpirationTime("1m")
        .setJti("j")
        .sign(privateKey);
    await expect(ctx.verifier.verify(await sign("issuer-x"))).resolves.toEqual({ kind: "user", userId, role: "VENDOR", tokenId: "j" });
    await expect(ctx.verifier.verify(await sign("enclave-auth"))).rejects.toBeInstanceOf(AppError);
  });

  test("overrides replace what configuration would build", async () => {
    const bus = memoryBus();
    const verifier = { verify: async () => ({ kind: "service" as const, service: "x" }) };
    const ctx = contextFromConfig(parseCommonConfig("things", { DATABASE_URL: "pglite://memory" }), { outbox, bus, verifier });
    expect(ctx.bus).toBe(bus);
    expect(ctx.verifier).toBe(verifier);
  });

  test("every service admits service tokens addressed to it when SERVICE_PUBLIC_JWKS is set, deployed as locally", async () => {
    const serviceKey = generatePrivateJwk();
    const signer = createServiceTokenSigner({ service: "payments", privateJwk: serviceKey });
    const env = { DATABASE_URL: "pglite://memory", AUTH_PUBLIC_JWKS: publicJwksJson(generatePrivateJwk()), SERVICE_PUBLIC_JWKS: publicJwksJson(serviceKey) };
    const profile = contextFromConfig(parseCommonConfig("profile", env), { outbox, bus: memoryBus() });
    await expect(profile.verifier.verify(await signer.mint("profile"))).resolves.toEqual({ kind: "service", service: "payments" });
    await expect(profile.verifier.verify(await signer.mint("auth"))).rejects.toBeInstanceOf(AppError);
    const { SERVICE_PUBLIC_JWKS: _none, ...withoutServiceKeys } = env;
    const closed = contextFromConfig(parseCommonConfig("profile", withoutServiceKeys), { outbox, bus: memoryBus() });
    await expect(closed.verifier.verify(await signer.mint("profile"))).rejects.toBeInstanceOf(AppError);
  });
});
