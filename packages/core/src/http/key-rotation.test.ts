/**
 * The pieces of a signing-key rotation: AUTH_SIGNING_KEY as a key set (the first signs, all
 * verify), the rotation steps that turn one value into the next, and a verifier that fetches the
 * JWKS from a URL picking up a new kid by fetching again, at most once per cooldown.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { generatePrivateJwk, isSigningKeysJson, type PrivateJwk, parseSigningKeys, publicJwkOf, rotateSigningKeys, signingKeysJson } from "../keys";
import { importSigningKey, signAccessToken } from "./access-token";
import { createTokenVerifier } from "./auth";

const settings = { issuer: "enclave-auth", audience: "enclave", accessTtlSeconds: 900 };
const user = { id: "0190d6a8-0000-7000-8000-0000000000b1", role: "CUSTOMER" as const };
const sign = async (jwk: PrivateJwk) => signAccessToken(await importSigningKey(jwk), settings, user);

describe("AUTH_SIGNING_KEY as a key set", () => {
  test("one key, or a set whose first key signs", () => {
    const [a, b] = [generatePrivateJwk(), generatePrivateJwk()];
    expect(parseSigningKeys("AUTH_SIGNING_KEY", JSON.stringify(a))).toEqual({ signer: a, keys: [a] });
    expect(parseSigningKeys("AUTH_SIGNING_KEY", JSON.stringify({ keys: [b, a] }))).toEqual({ signer: b, keys: [b, a] });
    expect(signingKeysJson([a])).toBe(JSON.stringify(a));
    expect(JSON.parse(signingKeysJson([a, b]))).toEqual({ keys: [a, b] });
  });

  test("refuses what is not a key set, naming the variable and never the value", () => {
    const a = generatePrivateJwk();
    const problems: [string, RegExp][] = [
      ["not json", /^AUTH_SIGNING_KEY is not JSON/],
      [JSON.stringify({ keys: [] }), /at least one key/],
      [JSON.stringify({ keys: [a, a] }), /same key id twice/],
      [JSON.stringify({ keys: [a, publicJwkOf(a)] }), /^AUTH_SIGNING_KEY \(key 2\) must be a P-256 private JWK/],
      [JSON.stringify({ keys: {} }), /at least one key/],
    ];
    for (const [value, message] of problems) {
      expect(isSigningKeysJson(value)).toBe(false);
      expect(() => parseSigningKeys("AUTH_SIGNING_KEY", value)).toThrow(message);
      try {
        parseSigningKeys("AUTH_SIGNING_KEY", value);
      } catch (error) {
        expect((error as Error).message).not.toContain(a.d);
      }
    }
  });

  test("add, promote, drop: the old key signs until promoted, the new one after, and only it is left", () => {
    const old = generatePrivateJwk();
    const added = parseSigningKeys("k", rotateSigningKeys(JSON.stringify(old), "add"));
    expect(added.signer).toEqual(old);
    expect(added.keys).toHaveLength(2);
    const fresh = added.keys[1] as PrivateJwk;
    expect(fresh.kid).not.toBe(old.kid);
    const promoted = parseSigningKeys("k", rotateSigningKeys(JSON.stringify({ keys: added.keys }), "promote"));
    expect(promoted).toEqual({ signer: fresh, keys: [fresh, old] });
    const dropped = rotateSigningKeys(JSON.stringify({ keys: promoted.keys }), "drop");
    expect(JSON.parse(dropped)).toEqual(fresh);
    expect(() => rotateSigningKeys(dropped, "promote")).toThrow(/add a new one first/);
  });
});

describe("a verifier that fetches the JWKS from a URL", () => {
  const a = generatePrivateJwk();
  const b = generatePrivateJwk();
  let published: PrivateJwk[] = [a];
  let fetches = 0;
  let server: Server;
  let url: URL;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: published.map(publicJwkOf) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/.well-known/jwks.json`);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("picks up a key published after it cached the set, by fetching again on the unknown kid", async () => {
    const cooldownMs = 150;
    const verifier = createTokenVerifier({ ...settings, jwks: url, jwksCooldownMs: cooldownMs });
    published = [a];
    fetches = 0;
    expect(await verifier.verify(await sign(a))).toMatchObject({ userId: user.id });
    expect(fetches).toBe(1);
    // Published beside the old key; the cache (10 minutes) has not run out.
    published = [a, b];
    await new Promise((resolve) => setTimeout(resolve, cooldownMs + 50));
    expect(await verifier.verify(await sign(b))).toMatchObject({ userId: user.id });
    expect(fetches).toBe(2);
    expect(await verifier.verify(await sign(a))).toMatchObject({ userId: user.id });
    expect(fetches).toBe(2);
  });

  test("tokens naming unknown kids are refused and cannot make it fetch more than once per cooldown", async () => {
    const verifier = createTokenVerifier({ ...settings, jwks: url });
    published = [a];
    fetches = 0;
    expect(await verifier.verify(await sign(a))).toMatchObject({ userId: user.id });
    const strangers = await Promise.all(Array.from({ length: 25 }, () => sign(generatePrivateJwk())));
    for (const token of strangers) await expect(verifier.verify(token)).rejects.toMatchObject({ code: "unauthorized" });
    // The default cooldown (30 s) has not passed since the first fetch: none of them fetched.
    expect(fetches).toBe(1);
  });

  test("once a key is no longer published and the cache has run out, its tokens are refused", async () => {
    const verifier = createTokenVerifier({ ...settings, jwks: url, jwksCacheMaxAgeMs: 100, jwksCooldownMs: 50 });
    published = [b, a];
    const old = await sign(a);
    expect(await verifier.verify(old)).toMatchObject({ userId: user.id });
    published = [b];
    await new Promise((resolve) => setTimeout(resolve, 150));
    await expect(verifier.verify(old)).rejects.toMatchObject({ code: "unauthorized" });
    expect(await verifier.verify(await sign(b))).toMatchObject({ userId: user.id });
  });
});
