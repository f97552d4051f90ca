/**
 * Every protected operation of every service, taken from the services' own OpenAPI documents,
 * against the local runtime: forged, tampered, expired, misaddressed and mis-sent tokens are all
 * refused with 401 `unauthorized` in the API.md error shape, and change nothing. Misused but
 * genuine credentials get what the contract says (403 `forbidden` where a customer or a service
 * is not admitted). As controls, genuine tokens, and a token minted here with the stage's key and
 * the same claims the forgeries carry, are never refused with 401: every refusal is the defect's
 * doing, not the test's. Runs on PGlite under a temporary DATA_DIR, or on fresh PostgreSQL
 * databases (one per service) when TEST_DATABASE_URL is set.
 */
import { createPublicKey, randomBytes, randomUUID } from "node:crypto";
import type { Access } from "@enclave/core";
import { createServiceTokenSigner } from "@enclave/core/http/service-token";
import { generatePrivateJwk, type PrivateJwk, publicJwkOf } from "@enclave/core/keys";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openApiDocuments } from "./openapi-documents";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { testEnvironment } from "./runtime.testing";

interface Parameter {
  in: "path" | "query" | "header";
  name: string;
  required?: boolean;
  example?: unknown;
  schema?: { example?: unknown };
}

interface Operation {
  service: string;
  method: string;
  /** The OpenAPI path, e.g. `/payments/{id}`. */
  path: string;
  operationId: string;
  access: Exclude<Access, "public">;
  parameters: Parameter[];
  body: unknown;
  /** The statuses the document lists for the operation. */
  responses: string[];
}

interface OpenApiOperation {
  operationId: string;
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { example?: unknown }> };
  responses: Record<string, unknown>;
}

const methods = ["get", "put", "post", "delete", "patch"];

/** The protected operations (a non-empty `security`, the operation's or the document's) of every service. */
const documents = await openApiDocuments();
const operations: Operation[] = documents.flatMap(({ service, document, specs }) =>
  Object.entries(document.paths as Record<string, Record<string, OpenApiOperation>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => methods.includes(method))
      .filter(([, operation]) => (operation.security ?? (document.security as unknown[] | undefined) ?? []).length > 0)
      .map(([method, operation]) => {
        const access = specs.find((spec) => spec.operationId === operation.operationId)?.access;
        if (!access || access === "public") throw new Error(`${operation.operationId} is documented as protected but its route is public`);
        return {
          service,
          method: method.toUpperCase(),
          path,
          operationId: operation.operationId,
          access,
          parameters: operation.parameters ?? [],
          body: operation.requestBody?.content?.["application/json"]?.example,
          responses: Object.keys(operation.responses),
        };
      }),
  ),
);

const admitsServices = (operation: Operation) => operation.access !== "user" && operation.access.service === true;
const admitsCustomers = (operation: Operation) => operation.access === "user" || operation.access.roles.includes("CUSTOMER");

/** The stage's keys, given to the runtime so that the test can sign as auth and as the services do. */
const signingJwk = generatePrivateJwk();
const serviceJwk = generatePrivateJwk();

let runtime: LocalRuntime;
let environment: Awaited<ReturnType<typeof testEnvironment>> | undefined;
const admin = { id: "", token: "" };
const customer = { id: "", email: `token-attacks-${Date.now()}@example.com`, token: "" };
let paymentId = "";
/** Claims a genuine ADMIN access token carries; the forgeries start from them. */
let adminClaims: JWTPayload & { role: string };
/** The state the forgeries must not change, read after set-up. */
let before: unknown;

const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A JWT over `claims` (the ADMIN claims with a new jti by default) signed by `jwk` with `header`. */
async function sign(options: { claims?: Partial<JWTPayload> & Record<string, unknown>; header?: Record<string, unknown>; jwk?: PrivateJwk } = {}) {
  const jwk = options.jwk ?? signingJwk;
  return new SignJWT({ ...adminClaims, iat: nowSeconds(), exp: nowSeconds() + 300, jti: randomUUID(), ...options.claims })
    .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: jwk.kid, ...options.header })
    .sign(await importJWK(jwk, "ES256"));
}

/** `header.payload.signature` assembled by hand, for tokens no library would sign. */
const compact = (header: unknown, payload: unknown, signature = "") => `${b64(header)}.${b64(payload)}.${signature}`;

/** An operation's request: path parameters and required query parameters filled with real ids, a valid example body. */
function requestOf(operation: Operation, headers: Record<string, string>): { url: string; init: RequestInit } {
  const fillFor = (parameter: Parameter): string => {
    if (parameter.in === "header") return randomUUID();
    if (parameter.name === "email") return customer.email;
    if (parameter.name === "userId" && parameter.in === "path") return customer.id;
    if (parameter.name === "id") return operation.service === "payments" ? paymentId : customer.id;
    const example = parameter.example ?? parameter.schema?.example;
    if (example === undefined) throw new Error(`${operation.operationId}: no value for ${parameter.in} parameter ${parameter.name}`);
    return String(example);
  };
  let path = operation.path;
  const query = new URLSearchParams();
  const requestHeaders: Record<string, string> = { ...headers };
  for (const parameter of operation.parameters) {
    if (parameter.in === "path") path = path.replace(`{${parameter.name}}`, encodeURIComponent(fillFor(parameter)));
    else if (parameter.in === "query" && parameter.required) query.set(parameter.name, fillFor(parameter));
    else if (parameter.in === "header" && parameter.required) requestHeaders[parameter.name.toLowerCase()] = fillFor(parameter);
  }
  if (path.includes("{")) throw new Error(`${operation.operationId}: unfilled path parameter in ${path}`);
  const init: RequestInit = { method: operation.method, headers: requestHeaders };
  if (operation.body !== undefined) {
    requestHeaders["content-type"] = "application/json";
    init.body = JSON.stringify(operation.body);
  }
  return { url: query.size > 0 ? `${path}?${query}` : path, init };
}

async function send(operation: Operation, headers: Record<string, string>, search = "") {
  const { url, init } = requestOf(operation, headers);
  const response = await runtime.app.request(`${url}${search ? (url.includes("?") ? "&" : "?") + search : ""}`, init);
  const text = await response.text();
  return { status: response.status, text, headers: response.headers };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Internals a refusal must never show: stack frames, library and key details, SQL. */
const leaks = /\bat .+\.(ts|js):\d+|stack|node_modules|jose|ERR_|JWS|JWK|signature|algorithm|\bkid\b|\bselect\b|pglite|postgres/i;

/** What is wrong with a refusal, or undefined when it is `status`/`code` in the API.md shape. */
function refusalProblem(answer: Awaited<ReturnType<typeof send>>, status: number, code: string): string | undefined {
  if (answer.status !== status) return `answered ${answer.status} (expected ${status}): ${answer.text.slice(0, 200)}`;
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown } };
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `answered a body that is not JSON: ${answer.text.slice(0, 200)}`;
  }
  if (Object.keys(body).join() !== "error" || !body.error) return `answered ${answer.text.slice(0, 200)}, not {error}`;
  if (body.error.code !== code) return `answered code ${String(body.error.code)} (expected ${code})`;
  if (typeof body.error.message !== "string" || body.error.message === "") return "answered without a message";
  const extra = Object.keys(body.error).filter((key) => !["code", "message"].includes(key));
  if (extra.length > 0) return `answered extra error members ${extra.join(", ")}`;
  if (leaks.test(answer.text)) return `leaks internals: ${answer.text.slice(0, 200)}`;
  if (!/^application\/json/.test(answer.headers.get("content-type") ?? "")) return `answered content-type ${answer.headers.get("content-type")}`;
  if (!answer.headers.get("x-request-id")) return "answered without x-request-id";
  return undefined;
}

/** A forged or mis-sent credential: the request headers (and query) that carry it. */
interface Attack {
  name: string;
  headers: Record<string, string>;
  search?: string;
}

let attacks: Attack[] = [];

async function forgeAttacks(): Promise<Attack[]> {
  const header = { alg: "ES256", typ: "JWT", kid: signingJwk.kid };
  const claims = () => ({ ...adminClaims, iat: nowSeconds(), exp: nowSeconds() + 300, jti: randomUUID() });
  const genuineSignature = customer.token.split(".")[2] as string;
  const [customerHeader, , customerSignature] = customer.token.split(".") as [string, string, string];
  const customerClaims = decodeJwt(customer.token);
  const publicPem = createPublicKey({ key: { ...publicJwkOf(signingJwk) }, format: "jwk" }).export({ type: "spki", format: "pem" }) as string;
  const servedJwks = await (await runtime.app.request("/auth/.well-known/jwks.json")).text();
  const hmac = async (secret: string) =>
    new SignJWT(claims()).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: signingJwk.kid }).sign(new TextEncoder().encode(secret));
  const otherStage = generatePrivateJwk();
  const rsa = await generateKeyPair("RS256", { extractable: true });
  const service = (jwk: PrivateJwk = serviceJwk) => createServiceTokenSigner({ service: "payments", privateJwk: jwk });
  const tokens: [string, string][] = [
    ["alg none, unsigned", compact({ alg: "none", typ: "JWT" }, claims())],
    ["alg none under the stage's kid", compact({ alg: "none", typ: "JWT", kid: signingJwk.kid }, claims())],
    ["alg NONE with a genuine signature", compact({ alg: "NONE", typ: "JWT" }, claims(), genuineSignature)],
    ["HS256 keyed with the public key's PEM (algorithm confusion)", await hmac(publicPem)],
    ["HS256 keyed with the published JWKS (algorithm confusion)", await hmac(servedJwks)],
    ["HS256 keyed with the public JWK's x coordinate", await hmac(signingJwk.x)],
    ["wrong iss", await sign({ claims: { iss: "someone-else" } })],
    ["wrong aud", await sign({ claims: { aud: "someone-else" } })],
    ["aud of a service instead of the app", await sign({ claims: { aud: "auth" } })],
    ["expired (exp an hour ago)", await sign({ claims: { iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 } })],
    ["not yet valid (nbf in an hour)", await sign({ claims: { nbf: nowSeconds() + 3600 } })],
    ["no exp", await sign({ claims: { exp: undefined } })],
    ["no jti", await sign({ claims: { jti: undefined } })],
    ["sub that is not a user id", await sign({ claims: { sub: "admin" } })],
    ["role that is not a role", await sign({ claims: { role: "SUPERUSER" } })],
    ["tampered payload: role ADMIN, original signature", `${customerHeader}.${b64({ ...customerClaims, role: "ADMIN" })}.${customerSignature}`],
    ["tampered payload: sub of the admin, original signature", `${customerHeader}.${b64({ ...customerClaims, sub: admin.id })}.${customerSignature}`],
    [
      "tampered payload: exp pushed a day on, original signature",
      `${customerHeader}.${b64({ ...customerClaims, exp: nowSeconds() + 86_400 })}.${customerSignature}`,
    ],
    ["signature stripped", compact(header, claims())],
    ["all-zero ES256 signature", compact(header, claims(), Buffer.alloc(64).toString("base64url"))],
    ["unknown kid (the stage's key)", await sign({ header: { kid: "not-a-published-kid" } })],
    ["another stage's key", await sign({ jwk: otherStage })],
    ["another stage's key under the stage's kid", await sign({ jwk: { ...otherStage, kid: signingJwk.kid } })],
    [
      "another key embedded in the header (jwk, jku)",
      await sign({
        jwk: otherStage,
        header: { jwk: publicJwkOf(otherStage), jku: "https://attacker.example/jwks.json", kid: otherStage.kid },
      }),
    ],
    ["RS256 under the stage's kid", await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: signingJwk.kid }).sign(rsa.privateKey)],
    [
      "RS256 with its own key in the header",
      await new SignJWT(claims()).setProtectedHeader({ alg: "RS256", typ: "JWT", jwk: await exportJWK(rsa.publicKey) }).sign(rsa.privateKey),
    ],
    ["user claims signed with the service key", await sign({ jwk: serviceJwk })],
    ["user claims signed with the service key, typ service+jwt", await sign({ jwk: serviceJwk, header: { typ: "service+jwt" } })],
    ["service token addressed to no service of this app", await service().mint("billing")],
    ["service token signed with another stage's service key", await service(otherStage).mint("auth")],
    [
      "service token living an hour",
      await sign({
        jwk: serviceJwk,
        header: { typ: "service+jwt" },
        claims: { iss: "service:payments", sub: "payments", aud: "auth", role: undefined, exp: nowSeconds() + 3600 },
      }),
    ],
    ["garbage", "garbage"],
    ["three garbage segments", "a.b.c"],
    ["a header and nothing else", `${b64(header)}..`],
    ["five segments (JWE-like)", `${b64({ alg: "dir", enc: "A256GCM" })}....`],
    ["8 KB of random base64url", randomBytes(6144).toString("base64url")],
  ];
  const basic = Buffer.from("admin@enclave.dev:enclave-admin-dev").toString("base64");
  return [
    ...tokens.map(([name, token]) => ({ name, headers: bearer(token) })),
    { name: "no Authorization header", headers: {} },
    { name: "empty Bearer", headers: { authorization: "Bearer " } },
    { name: "Bearer without a token", headers: { authorization: "Bearer" } },
    { name: "two tokens", headers: { authorization: `Bearer ${admin.token} ${admin.token}` } },
    { name: "a garbage token then the genuine one", headers: { authorization: `Bearer garbage,Bearer ${admin.token}` } },
    { name: "genuine token in the Basic scheme", headers: { authorization: `Basic ${admin.token}` } },
    { name: "the admin's password in the Basic scheme", headers: { authorization: `Basic ${basic}` } },
    { name: "genuine token without a scheme", headers: { authorization: admin.token } },
    { name: "genuine token in the Token scheme", headers: { authorization: `Token ${admin.token}` } },
    { name: "genuine token in a query parameter", headers: {}, search: `access_token=${admin.token}` },
    { name: "genuine token in a cookie", headers: { cookie: `accessToken=${admin.token}; token=${admin.token}` } },
  ];
}

beforeAll(async () => {
  environment = await testEnvironment({
    SEED: "development",
    BUS_RETRY_BASE_MS: "20",
    AUTH_SIGNING_KEY: JSON.stringify(signingJwk),
    SERVICE_SIGNING_KEY: JSON.stringify(serviceJwk),
  });
  runtime = await createLocalRuntime({ env: environment.env });
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await runtime.app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as { user: { id: string }; accessToken: string; payment: { id: string } };
    if (response.status >= 300) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const login = await post("/auth/login", { email: "admin@enclave.dev", password: "enclave-admin-dev" });
  Object.assign(admin, { id: login.user.id, token: login.accessToken });
  const registered = await post("/auth/register", { email: customer.email, password: "correct horse battery", name: "Token Attacks" });
  Object.assign(customer, { id: registered.user.id, token: registered.accessToken });
  // Sent by the admin: the forgeries claim to be the admin, so a forgery that got through could cancel it.
  const paid = await post("/payments", { recipientEmail: customer.email, amount: "3.00" }, { ...bearer(admin.token), "idempotency-key": randomUUID() });
  paymentId = paid.payment.id;
  adminClaims = decodeJwt(admin.token) as JWTPayload & { role: string };
  attacks = await forgeAttacks();
  await runtime.bus.drain();
  before = await observableState();
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  await environment?.dispose();
});

/** What a forged token that got through could change, as the administrator and the customer see it. */
async function observableState() {
  const read = async (path: string, token: string) => {
    const response = await runtime.app.request(path, { headers: bearer(token) });
    return { status: response.status, body: await response.json() };
  };
  return {
    customer: await read(`/auth/users/${customer.id}`, admin.token),
    customerProfile: await read("/profiles/me", customer.token),
    adminProfile: await read("/profiles/me", admin.token),
    config: await read("/admin/config", admin.token),
    adminPayments: await read("/payments", admin.token),
    customerPayments: await read("/payments", customer.token),
    auditLogs: await read("/admin/audit-logs?limit=100", admin.token),
  };
}

describe("the tokens and operations under test", () => {
  test("every protected operation of every service, as the runtime serves the documents", async () => {
    const served: string[] = [];
    for (const { prefix, document } of documents) {
      const response = await runtime.app.request(`${prefix}/openapi.json`);
      expect(response.status).toBe(200);
      const live = (await response.json()) as { paths: Record<string, Record<string, OpenApiOperation>>; security?: unknown[] };
      for (const [path, item] of Object.entries(live.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          if ((operation.security ?? live.security ?? []).length > 0) served.push(`${method.toUpperCase()} ${path}`);
        }
      }
      expect(live.security).toEqual(document.security);
    }
    expect(served.sort()).toEqual(operations.map((o) => `${o.method} ${o.path}`).sort());
    // And no route guarded by an access rule is missing from them (documented as public, or not at all).
    const guarded = documents.flatMap(({ specs }) => specs.filter((spec) => spec.access !== "public").map((spec) => spec.operationId));
    expect(guarded.sort()).toEqual(operations.map((o) => o.operationId).sort());
    // Four services, each with protected operations: the list cannot be silently empty or partial.
    expect(new Set(operations.map((o) => o.service))).toEqual(new Set(["auth", "profile", "payments", "admin"]));
    expect(operations.length).toBeGreaterThanOrEqual(17);
  });

  test("the runtime signs with the keys given to it, and publishes only the stage's key", async () => {
    expect(decodeProtectedHeader(admin.token)).toMatchObject({ alg: "ES256", kid: signingJwk.kid });
    const jwks = (await (await runtime.app.request("/auth/.well-known/jwks.json")).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toEqual([signingJwk.kid]);
    expect(adminClaims).toMatchObject({ sub: admin.id, role: "ADMIN" });
    expect(attacks.length).toBeGreaterThanOrEqual(40);
  });
});

describe.each(operations.map((operation) => [`${operation.method} ${operation.path}`, operation] as const))("%s", (_, operation) => {
  test("refuses every forged or mis-sent token with 401 unauthorized", async () => {
    const answers = await Promise.all(attacks.map(async (attack) => ({ attack, answer: await send(operation, attack.headers, attack.search) })));
    const problems = answers.flatMap(({ attack, answer }) => {
      const problem = refusalProblem(answer, 401, "unauthorized");
      return problem ? [`${attack.name}: ${problem}`] : [];
    });
    expect(problems).toEqual([]);
  });

  test("refuses a service token addressed to another service with 401", async () => {
    const signer = createServiceTokenSigner({ service: "payments", privateJwk: serviceJwk });
    const others = documents.map((d) => d.service).filter((service) => service !== operation.service);
    const answers = await Promise.all(others.map(async (audience) => ({ audience, answer: await send(operation, bearer(await signer.mint(audience))) })));
    const problems = answers.flatMap(({ audience, answer }) => {
      const problem = refusalProblem(answer, 401, "unauthorized");
      return problem ? [`addressed to ${audience}: ${problem}`] : [];
    });
    expect(problems).toEqual([]);
  });

  // A genuine credential of a caller the operation does not admit: 403, as documented for the operation.
  if (!admitsServices(operation)) {
    test("refuses a genuine service token addressed to it with 403, as it admits no service", async () => {
      const token = await createServiceTokenSigner({ service: "payments", privateJwk: serviceJwk }).mint(operation.service);
      expect(refusalProblem(await send(operation, bearer(token)), 403, "forbidden")).toBeUndefined();
    });
  }

  if (!admitsCustomers(operation)) {
    test("refuses a genuine customer token with 403, as it admits no customer", async () => {
      expect(refusalProblem(await send(operation, bearer(customer.token)), 403, "forbidden")).toBeUndefined();
    });
  }
});

test("nothing the refused requests sent changed anything", async () => {
  await runtime.bus.drain();
  expect(await observableState()).toEqual(before);
});

// Controls: these run last, since the genuine tokens do change things (a role, a configuration key).
describe.each(operations.map((operation) => [`${operation.method} ${operation.path}`, operation] as const))("%s, controls", (_, operation) => {
  test("answers the genuine tokens and the well-formed twin of the forgeries without 401", async () => {
    const controls: [string, Record<string, string>][] = [
      ["the admin's access token", bearer(admin.token)],
      ["the customer's access token", bearer(customer.token)],
      ["a token signed here with the stage's key and the forgeries' claims", bearer(await sign())],
      ["the admin's access token in a lower-case bearer scheme", { authorization: `bearer ${admin.token}` }],
    ];
    if (admitsServices(operation)) {
      const token = await createServiceTokenSigner({ service: "payments", privateJwk: serviceJwk }).mint(operation.service);
      controls.push(["a service token addressed to it", bearer(token)]);
    }
    const answers = await Promise.all(controls.map(async ([name, headers]) => ({ name, answer: await send(operation, headers) })));
    const problems = answers.flatMap(({ name, answer }) => {
      const undocumented = !operation.responses.includes(String(answer.status));
      // The admin (and the twin, which carries the admin's claims) and admitted services are let in: only a customer may be refused, with 403.
      const refused = answer.status === 401 || (answer.status === 403 && !name.startsWith("the customer's"));
      return refused || undocumented || answer.status >= 500 ? [`${name}: answered ${answer.status}: ${answer.text.slice(0, 200)}`] : [];
    });
    expect(problems).toEqual([]);
  });
});
