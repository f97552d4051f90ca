import { importSigningKey, signAccessToken } from "@enclave/core/http/access-token";
import { generatePrivateJwk } from "@enclave/core/keys";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, test } from "vitest";
import { hashRefreshToken, newRefreshToken } from "./tokens";

describe("signing keys", () => {
  test("a generated key is a private ES256 JWK with a key id", async () => {
    const jwk = generatePrivateJwk();
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", kid: expect.any(String), d: expect.any(String) });
  });

  test("the public half has no private part", async () => {
    const key = await importSigningKey(generatePrivateJwk());
    expect(key.publicJwk).not.toHaveProperty("d");
    expect(key.publicJwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: key.kid });
  });

  test("a key without a kid gets a stable one derived from the public key", async () => {
    const { kid: _kid, ...jwk } = generatePrivateJwk();
    const [a, b] = await Promise.all([importSigningKey(jwk), importSigningKey(jwk)]);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(b.kid).toBe(a.kid);
  });

  test.each([
    ["a public key", async () => (({ d: _d, ...pub }) => pub)(generatePrivateJwk())],
    ["another curve", async () => ({ ...generatePrivateJwk(), crv: "P-384" })],
    ["a symmetric key", async () => ({ kty: "oct", k: "c2VjcmV0" })],
  ])("refuses %s", async (_, make) => {
    await expect(importSigningKey(await make())).rejects.toThrow(/P-256 private JWK/);
  });
});

describe("access tokens", () => {
  test("carry sub, role, iss, aud, exp, iat and jti, signed ES256 with the key id", async () => {
    const key = await importSigningKey(generatePrivateJwk());
    const token = await signAccessToken(key, { issuer: "iss", audience: "aud", accessTtlSeconds: 600 }, { id: "u-1", role: "VENDOR" });
    expect(decodeProtectedHeader(token)).toEqual({ alg: "ES256", kid: key.kid, typ: "JWT" });
    const claims = decodeJwt(token);
    expect(claims).toEqual({ sub: "u-1", role: "VENDOR", iss: "iss", aud: "aud", iat: expect.any(Number), exp: expect.any(Number), jti: expect.any(String) });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);
  });
});

describe("refresh tokens", () => {
  test("are 256 random bits, stored as their SHA-256", () => {
    const a = newRefreshToken();
    const b = newRefreshToken();
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.token).not.toBe(b.token);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).toBe(hashRefreshToken(a.token));
    expect(a.hash).not.toBe(b.hash);
  });
});
