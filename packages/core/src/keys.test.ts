import { describe, expect, test } from "vitest";
import { generatePrivateJwk, isPrivateJwkJson, isPublicJwksJson, parsePrivateJwk, publicJwkOf, publicJwksJson } from "./keys";

describe("keys", () => {
  test("a generated key parses back, and its public half has no private part", () => {
    const jwk = generatePrivateJwk();
    expect(parsePrivateJwk("KEY", JSON.stringify(jwk))).toEqual(jwk);
    expect(publicJwkOf(jwk)).toEqual({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: jwk.kid, alg: "ES256", use: "sig" });
    const published = publicJwksJson(jwk);
    expect(isPublicJwksJson(published)).toBe(true);
    expect(published).not.toContain(jwk.d);
  });

  test("a key without a kid gets one derived from the public key, the same every time", () => {
    const { kid, ...bare } = generatePrivateJwk();
    expect(parsePrivateJwk("KEY", JSON.stringify(bare)).kid).toBe(kid);
  });

  test("what is not a P-256 private key is refused by name, never echoed", () => {
    const secret = "hunter2-not-json";
    expect(() => parsePrivateJwk("AUTH_SIGNING_KEY", secret)).toThrow(/^AUTH_SIGNING_KEY is not JSON/);
    expect(() => parsePrivateJwk("AUTH_SIGNING_KEY", secret)).not.toThrow(new RegExp(secret));
    const { d: _d, ...publicOnly } = generatePrivateJwk();
    for (const wrong of [publicOnly, { ...generatePrivateJwk(), crv: "P-384" }, { kty: "oct", k: "c2VjcmV0" }]) {
      expect(() => parsePrivateJwk("AUTH_SIGNING_KEY", JSON.stringify(wrong))).toThrow(/AUTH_SIGNING_KEY must be a P-256 private JWK/);
      expect(isPrivateJwkJson(JSON.stringify(wrong))).toBe(false);
    }
    expect(isPublicJwksJson(JSON.stringify({ keys: [generatePrivateJwk()] }))).toBe(false);
  });
});
