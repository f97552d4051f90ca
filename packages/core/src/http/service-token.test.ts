import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, test } from "vitest";
import { isPrivateJwkJson, isPublicJwksJson } from "../keys";
import { createTokenVerifier } from "./auth";
import { createServiceTokenSigner, createServiceTokenVerifier, SERVICE_TOKEN_ALG, SERVICE_TOKEN_TTL_SECONDS, SERVICE_TOKEN_TYPE } from "./service-token";

let privateJwk: JWK;
let jwks: { keys: JWK[] };

beforeAll(async () => {
  const { privateKey } = await generateKeyPair(SERVICE_TOKEN_ALG, { extractable: true });
  privateJwk = { ...(await exportJWK(privateKey)), kid: "stage-key" };
  const { d: _private, ...publicJwk } = privateJwk;
  jwks = { keys: [{ ...publicJwk, alg: SERVICE_TOKEN_ALG }] };
});

const signer = (now?: () => number) => createServiceTokenSigner({ service: "payments", privateJwk, ...(now ? { now } : {}) });

describe("service tokens", () => {
  test("carry the caller, the callee, a jti and a 60 s lifetime; no secret", async () => {
    const token = await signer().mint("auth");
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: "service:payments", sub: "payments", aud: "auth" });
    expect(typeof claims.jti).toBe("string");
    expect((claims.exp as number) - (claims.iat as number)).toBe(SERVICE_TOKEN_TTL_SECONDS);
    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", typ: SERVICE_TOKEN_TYPE, kid: "stage-key" });
    expect(token).not.toContain(privateJwk.d as string);
    const other = decodeJwt(await signer().mint("auth"));
    expect(other.jti).not.toBe(claims.jti);
  });

  test("the callee gets a service principal", async () => {
    const verifier = createServiceTokenVerifier({ audience: "auth", jwks });
    expect(await verifier.verify(await signer().mint("auth"))).toEqual({ kind: "service", service: "payments" });
  });

  test("expired, future-dated and misaddressed tokens are refused", async () => {
    const verifier = createServiceTokenVerifier({ audience: "auth", jwks });
    const expired = await signer(() => Date.now() - 70_000).mint("auth");
    await expect(verifier.verify(expired)).rejects.toMatchObject({ code: "unauthorized" });
    const future = await signer(() => Date.now() + 600_000).mint("auth");
    await expect(verifier.verify(future)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(verifier.verify(await signer().mint("admin"))).rejects.toMatchObject({ code: "unauthorized" });
    await expect(verifier.verify("not.a.token")).rejects.toMatchObject({ code: "unauthorized" });
  });

  test("a caller that is not allowed is forbidden", async () => {
    const verifier = createServiceTokenVerifier({ audience: "auth", jwks, allowedCallers: ["admin"] });
    await expect(verifier.verify(await signer().mint("auth"))).rejects.toMatchObject({ code: "forbidden" });
  });

  test("a user-token verifier falls back to service tokens through its serviceTokens option", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const { d: _d, ...userKey } = await exportJWK(privateKey);
    const verifier = createTokenVerifier({
      issuer: "enclave-auth",
      audience: "enclave",
      jwks: { keys: [{ ...userKey, alg: "ES256" }] },
      serviceTokens: createServiceTokenVerifier({ audience: "auth", jwks }),
    });
    expect(await verifier.verify(await signer().mint("auth"))).toEqual({ kind: "service", service: "payments" });
    await expect(verifier.verify(await signer().mint("profile"))).rejects.toMatchObject({ code: "unauthorized" });
  });

  test("signers refuse keys and names that are not valid", () => {
    const { d: _private, ...publicOnly } = privateJwk;
    expect(() => createServiceTokenSigner({ service: "payments", privateJwk: publicOnly })).toThrow(/private JWK/);
    expect(() => createServiceTokenSigner({ service: "Payments!", privateJwk })).toThrow(/service name/);
  });

  test("config checks", () => {
    expect(isPublicJwksJson(JSON.stringify(jwks))).toBe(true);
    expect(isPublicJwksJson("{}")).toBe(false);
    expect(isPublicJwksJson("not json")).toBe(false);
    expect(isPrivateJwkJson(JSON.stringify(privateJwk))).toBe(true);
    expect(isPrivateJwkJson(JSON.stringify(jwks.keys[0]))).toBe(false);
  });
});
