import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AppError } from "../errors";
import { uuidv7 } from "../ids";
import { ACCESS_TOKEN_ALG, createTokenVerifier } from "./auth";
import type { TokenVerifier } from "./types";

const issuer = "enclave-auth";
const audience = "enclave";
const userId = uuidv7();

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let keys: KeyPair;
let otherKeys: KeyPair;
let publicJwk: JWK;
let verifier: TokenVerifier;

const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const base: Record<string, unknown> = { sub: userId, role: "CUSTOMER", iss: issuer, aud: audience, iat: now, exp: now + 600, jti: uuidv7(), ...overrides };
  for (const [key, value] of Object.entries(base)) if (value === undefined) delete base[key];
  return base as JWTPayload;
}

function sign(payload: JWTPayload, key = keys.privateKey, kid = "k1"): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid, typ: "JWT" }).sign(key);
}

/** A token signed with HMAC-SHA256, using the given bytes as the secret. */
function hs256(payload: JWTPayload, secret: string, kid = "k1"): string {
  const input = `${b64({ alg: "HS256", typ: "JWT", kid })}.${b64(payload)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

beforeAll(async () => {
  keys = await generateKeyPair(ACCESS_TOKEN_ALG, { extractable: true });
  otherKeys = await generateKeyPair(ACCESS_TOKEN_ALG, { extractable: true });
  publicJwk = { ...(await exportJWK(keys.publicKey)), kid: "k1", alg: ACCESS_TOKEN_ALG, use: "sig" };
  verifier = createTokenVerifier({ issuer, audience, jwks: { keys: [publicJwk] } });
});

describe("createTokenVerifier", () => {
  test("a valid ES256 token gives the user principal", async () => {
    const jti = uuidv7();
    const principal = await verifier.verify(await sign(claims({ role: "ADMIN", jti })));
    expect(principal).toEqual({ kind: "user", userId, role: "ADMIN", tokenId: jti });
  });

  test('alg "none" is rejected', async () => {
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`;
    expect((await rejection(verifier.verify(unsigned))).code).toBe("unauthorized");
    const noKid = `${b64({ alg: "none" })}.${b64(claims())}.`;
    expect((await rejection(verifier.verify(noKid))).code).toBe("unauthorized");
  });

  test("HS256 signed with the public key as the secret is rejected", async () => {
    const pem = await exportSPKI(keys.publicKey);
    for (const secret of [pem, JSON.stringify(publicJwk), publicJwk.x ?? ""]) {
      const error = await rejection(verifier.verify(hs256(claims(), secret)));
      expect(error.code).toBe("unauthorized");
      expect(error.status).toBe(401);
    }
  });

  test("a token signed by another key is rejected", async () => {
    expect((await rejection(verifier.verify(await sign(claims(), otherKeys.privateKey)))).code).toBe("unauthorized");
    expect((await rejection(verifier.verify(await sign(claims(), otherKeys.privateKey, "other-kid")))).code).toBe("unauthorized");
  });

  test("a tampered payload is rejected", async () => {
    const token = await sign(claims());
    const [header, , signature] = token.split(".");
    const forged = `${header}.${b64(claims({ role: "ADMIN" }))}.${signature}`;
    expect((await rejection(verifier.verify(forged))).code).toBe("unauthorized");
  });

  test("wrong issuer or audience is rejected", async () => {
    expect((await rejection(verifier.verify(await sign(claims({ iss: "someone-else" }))))).code).toBe("unauthorized");
    expect((await rejection(verifier.verify(await sign(claims({ aud: "other-app" }))))).code).toBe("unauthorized");
    expect((await rejection(verifier.verify(await sign(claims({ iss: undefined }))))).code).toBe("unauthorized");
    expect((await rejection(verifier.verify(await sign(claims({ aud: undefined }))))).code).toBe("unauthorized");
  });

  test("an expired token is rejected; a token within the clock tolerance is accepted", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await rejection(verifier.verify(await sign(claims({ iat: now - 700, exp: now - 60 }))))).code).toBe("unauthorized");
    await expect(verifier.verify(await sign(claims({ iat: now - 700, exp: now - 1 })))).resolves.toMatchObject({ userId });
  });

  test("a token missing jti, sub, exp or iat, or with an unknown role, is rejected", async () => {
    for (const missing of ["jti", "sub", "exp", "iat", "role"]) {
      const error = await rejection(verifier.verify(await sign(claims({ [missing]: undefined }))));
      expect(error.code, missing).toBe("unauthorized");
    }
    expect((await rejection(verifier.verify(await sign(claims({ role: "ROOT" }))))).code).toBe("unauthorized");
    expect((await rejection(verifier.verify(await sign(claims({ sub: 42 }))))).code).toBe("unauthorized");
  });

  test("garbage is rejected as unauthorized", async () => {
    for (const token of ["", "abc", "a.b.c", "a.b", `${b64("{")}.${b64("{")}.x`]) {
      expect((await rejection(verifier.verify(token))).code).toBe("unauthorized");
    }
  });

  test("a service-token verifier is consulted only for tokens that are not user tokens", async () => {
    const seen: string[] = [];
    const withServices = createTokenVerifier({
      issuer,
      audience,
      jwks: { keys: [publicJwk] },
      serviceTokens: {
        async verify(token) {
          seen.push(token);
          if (token === "service-token") return { kind: "service", service: "payments" };
          throw new AppError("unauthorized");
        },
      },
    });
    await expect(withServices.verify(await sign(claims()))).resolves.toMatchObject({ kind: "user" });
    expect(seen).toEqual([]);
    await expect(withServices.verify("service-token")).resolves.toEqual({ kind: "service", service: "payments" });
    expect((await rejection(withServices.verify("nope"))).code).toBe("unauthorized");
  });
});

describe("createTokenVerifier with the auth service's JWKS URL", () => {
  let server: Server;
  let base: string;
  let mode: "ok" | "error" | "garbage" = "ok";
  let requests = 0;

  beforeAll(async () => {
    server = createServer((_request, response) => {
      requests++;
      if (mode === "error") return void response.writeHead(500).end("boom");
      if (mode === "garbage") return void response.writeHead(200, { "content-type": "application/json" }).end('{"not":"a jwks"}');
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("keys are fetched once and cached", async () => {
    mode = "ok";
    requests = 0;
    const remote = createTokenVerifier({ issuer, audience, jwks: new URL(`${base}/auth/.well-known/jwks.json`) });
    await expect(remote.verify(await sign(claims()))).resolves.toMatchObject({ userId });
    await expect(remote.verify(await sign(claims()))).resolves.toMatchObject({ userId });
    expect(requests).toBe(1);
  });

  test("an unreachable or failing JWKS endpoint is 503 unavailable, not 401", async () => {
    const token = await sign(claims());
    const closedPort = createServer();
    await new Promise<void>((resolve) => closedPort.listen(0, "127.0.0.1", resolve));
    const port = (closedPort.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closedPort.close(() => resolve()));
    const unreachable = createTokenVerifier({ issuer, audience, jwks: new URL(`http://127.0.0.1:${port}/jwks.json`) });
    const error = await rejection(unreachable.verify(token));
    expect(error.code).toBe("unavailable");
    expect(error.status).toBe(503);

    for (const failing of ["error", "garbage"] as const) {
      mode = failing;
      const remote = createTokenVerifier({ issuer, audience, jwks: new URL(`${base}/jwks.json`) });
      expect((await rejection(remote.verify(token))).code, failing).toBe("unavailable");
    }
    mode = "ok";
  });

  test("with a reachable JWKS, a bad token is still 401", async () => {
    mode = "ok";
    const remote = createTokenVerifier({ issuer, audience, jwks: new URL(`${base}/jwks.json`) });
    expect((await rejection(remote.verify(await sign(claims(), otherKeys.privateKey, "unknown-kid")))).code).toBe("unauthorized");
    expect((await rejection(remote.verify(hs256(claims(), JSON.stringify(publicJwk))))).code).toBe("unauthorized");
  });
});
