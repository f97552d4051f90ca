/**
 * Sign-in abuse from one source: failures count per address as well as per account, so one
 * client cannot spread guesses over many accounts; the address is the one the platform saw
 * (API Gateway's sourceIp, the local socket), never a client-written X-Forwarded-For unless
 * trusted proxies are configured; a lock answers every email alike.
 */
import type { AddressInfo } from "node:net";
import { rowsOf } from "@enclave/core";
import { handle } from "@enclave/core/lambda-http";
import { apiGatewayEvent } from "@enclave/core/testing/aws-events";
import { serve } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addressThrottleKey, sourceAddress } from "./source-address";
import { type AuthHarness, createAuthHarness } from "./testing";
import { pruneLoginAttempts } from "./user";

/** Generous per account (never reached here), five failures per address. */
const throttle = { maxFailures: 50, windowSeconds: 600, lockSeconds: 60 };
const addressThrottle = { maxFailures: 5, windowSeconds: 600, lockSeconds: 120 };
const PASSWORD = "correct horse battery";

let h: AuthHarness;
let known: string;
let n = 0;
let net = 0;
/** A fresh address of the TEST-NET-3 range for each test, so tests do not share counters. */
const freshAddress = () => `203.0.113.${++net}`;
const unknownEmail = () => `nobody-${++n}@example.com`;

beforeAll(async () => {
  h = await createAuthHarness({ throttle, addressThrottle });
  known = `known-${Date.now()}@example.com`;
  const res = await h.app.request("/auth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: known, password: PASSWORD, name: "Known" }),
  });
  expect(res.status).toBe(201);
});
afterAll(() => h?.dispose());

interface Answer {
  status: number;
  body: unknown;
  retryAfter: string | null;
  headerNames: string[];
}

/** POST /auth/login through the Lambda adapter, as API Gateway delivers it from `sourceIp`. */
async function viaGateway(sourceIp: string, email: string, password: string, headers: Record<string, string> = {}): Promise<Answer> {
  const event = apiGatewayEvent({
    method: "POST",
    path: "/auth/login",
    body: JSON.stringify({ email, password }),
    headers: { "content-type": "application/json", ...headers },
  });
  event.requestContext.http.sourceIp = sourceIp;
  const result = await handle(h.app)(event, {});
  return {
    status: result.statusCode,
    body: JSON.parse(result.body),
    retryAfter: result.headers["retry-after"] ?? null,
    headerNames: Object.keys(result.headers)
      .filter((name) => name !== "x-request-id")
      .sort(),
  };
}

describe("failed sign-ins are throttled per source address", () => {
  test("guesses spread over many accounts lock the address: 429 rate_limited with Retry-After, other addresses unaffected", async () => {
    const address = freshAddress();
    for (let i = 0; i < addressThrottle.maxFailures; i++) {
      // A known account among unknown ones: each account fails once, far below its own limit.
      const answer = await viaGateway(address, i === 2 ? known : unknownEmail(), "wrong password");
      expect(answer.status).toBe(401);
    }
    const locked = await viaGateway(address, known, PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body).toEqual({ error: { code: "rate_limited", message: expect.any(String) } });
    expect(Number(locked.retryAfter)).toBeGreaterThan(addressThrottle.lockSeconds - 5);
    expect(Number(locked.retryAfter)).toBeLessThanOrEqual(addressThrottle.lockSeconds);
    expect((await viaGateway(freshAddress(), known, PASSWORD)).status).toBe(200);
  });

  test("a locked address answers known and unknown emails, right and wrong passwords, identically", async () => {
    const address = freshAddress();
    for (let i = 0; i < addressThrottle.maxFailures; i++) await viaGateway(address, unknownEmail(), "wrong password");
    const answers = [
      await viaGateway(address, known, PASSWORD),
      await viaGateway(address, known, "wrong password"),
      await viaGateway(address, unknownEmail(), "wrong password"),
    ];
    for (const answer of answers) {
      expect({ ...answer, retryAfter: typeof answer.retryAfter }).toEqual({ ...answers[0], retryAfter: "string" });
    }
  });

  test("before the lock, a known and an unknown email get the same 401 status, body and headers", async () => {
    const address = freshAddress();
    const wrongPassword = await viaGateway(address, known, "wrong password");
    const unknown = await viaGateway(address, unknownEmail(), "wrong password");
    expect(wrongPassword.status).toBe(401);
    expect(unknown).toEqual(wrongPassword);
  });

  test("an unknown email costs the same password check as a known one (timing shape)", async () => {
    const slow = await createAuthHarness({ throttle, addressThrottle, passwordCost: 12 });
    try {
      await slow.app.request("/auth/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: known, password: PASSWORD, name: "Known" }),
      });
      const time = async (email: string) => {
        const started = performance.now();
        const res = await slow.app.request("/auth/login", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ email, password: "wrong password" }),
        });
        expect(res.status).toBe(401);
        return performance.now() - started;
      };
      const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
      const knownTimes: number[] = [];
      const unknownTimes: number[] = [];
      // Interleaved, so machine load falls on both alike; the per-account limit is 50.
      for (let i = 0; i < 5; i++) {
        knownTimes.push(await time(known));
        unknownTimes.push(await time(unknownEmail()));
      }
      // A check at another cost differs by an order of magnitude (2^17 against 2^12 here), so
      // wide bounds catch it without failing on a loaded machine.
      const ratio = median(unknownTimes) / median(knownTimes);
      expect(ratio).toBeGreaterThan(0.25);
      expect(ratio).toBeLessThan(4);
    } finally {
      await slow.dispose();
    }
  });

  test("a successful sign-in does not reset the address's count", async () => {
    const address = freshAddress();
    for (let i = 0; i < addressThrottle.maxFailures - 1; i++) await viaGateway(address, unknownEmail(), "wrong password");
    expect((await viaGateway(address, known, PASSWORD)).status).toBe(200);
    expect((await viaGateway(address, unknownEmail(), "wrong password")).status).toBe(401);
    expect((await viaGateway(address, known, PASSWORD)).status).toBe(429);
  });

  test("a client-written X-Forwarded-For does not get around the lock", async () => {
    const address = freshAddress();
    for (let i = 0; i < addressThrottle.maxFailures; i++) {
      await viaGateway(address, unknownEmail(), "wrong password", { "x-forwarded-for": `198.51.100.${i}` });
    }
    expect((await viaGateway(address, known, PASSWORD, { "x-forwarded-for": "198.51.100.200" })).status).toBe(429);
  });

  test("addresses of one IPv6 /64 share a count; another /64 does not", async () => {
    for (let i = 0; i < addressThrottle.maxFailures; i++) await viaGateway(`2001:db8:0:42::${(i + 1).toString(16)}`, unknownEmail(), "wrong password");
    expect((await viaGateway("2001:db8:0:42:ffff:1:2:3", known, PASSWORD)).status).toBe(429);
    expect((await viaGateway("2001:db8:0:43::1", known, PASSWORD)).status).toBe(200);
  });

  test("the recorded sample's sourceIp (192.168.0.1/32) is counted as 192.168.0.1", async () => {
    const event = apiGatewayEvent({ method: "POST", path: "/auth/login", body: "{}" });
    expect(event.requestContext.http.sourceIp).toBe("192.168.0.1/32");
    for (let i = 0; i < addressThrottle.maxFailures; i++) await viaGateway("192.168.0.1/32", unknownEmail(), "wrong password");
    expect((await viaGateway("192.168.0.1", known, PASSWORD)).status).toBe(429);
  });
});

test("the prune cron drops address counters by the address window, and keeps those still counting or locked", async () => {
  const db = h.database.db;
  await db.execute(sql`insert into auth.login_attempts (account_key, failures, window_started_at, locked_until) values
    ('ip:198.18.0.1', 2, now() - interval '11 minutes', null),
    ('ip:198.18.0.2', 2, now() - interval '9 minutes', null),
    ('ip:198.18.0.3', 5, now() - interval '30 minutes', now() + interval '1 minute')`);
  await pruneLoginAttempts(h.ctx);
  const left = rowsOf<{ key: string }>(
    await db.execute(sql`select account_key as key from auth.login_attempts where account_key like 'ip:198.18.%' order by 1`),
  );
  expect(left.map((r) => r.key)).toEqual(["ip:198.18.0.2", "ip:198.18.0.3"]);
});

describe("locally, the socket's address", () => {
  test("failures from one connection's address lock it, whatever X-Forwarded-For says", async () => {
    const local = await createAuthHarness({ throttle, addressThrottle });
    const server = serve({ fetch: local.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const post = (email: string, password: string, forwardedFor: string) =>
        fetch(`${base}/auth/login`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor },
          body: JSON.stringify({ email, password }),
        });
      for (let i = 0; i < addressThrottle.maxFailures; i++) expect((await post(unknownEmail(), "wrong password", `198.51.100.${i}`)).status).toBe(401);
      const locked = await post(unknownEmail(), "wrong password", "198.51.100.99");
      expect(locked.status).toBe(429);
      expect(locked.headers.get("retry-after")).toMatch(/^\d+$/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await local.dispose();
    }
  });
});

describe("which address a request has", () => {
  const addressOf = async (env: unknown, headers: Record<string, string> = {}, hops = 0) => {
    const app = new Hono();
    app.get("/", (c) => c.json({ address: sourceAddress(c, hops) ?? null }));
    return ((await (await app.request("/", { headers }, env)).json()) as { address: string | null }).address;
  };

  test("API Gateway's, then the REST API's, then the socket's; never X-Forwarded-For by default", async () => {
    const forwarded = { "x-forwarded-for": "6.6.6.6" };
    expect(await addressOf({ requestContext: { http: { sourceIp: "198.51.100.7" } } }, forwarded)).toBe("198.51.100.7");
    expect(await addressOf({ requestContext: { identity: { sourceIp: "2001:db8::1" } } }, forwarded)).toBe("2001:db8::1");
    expect(await addressOf({ incoming: { socket: { remoteAddress: "::1" } } }, forwarded)).toBe("::1");
    expect(await addressOf({}, forwarded)).toBeNull();
  });

  test("with trusted proxies configured, the address that many hops from the right of X-Forwarded-For", async () => {
    const gateway = { requestContext: { http: { sourceIp: "130.176.0.1" } } };
    const chain = { "x-forwarded-for": "6.6.6.6, 198.51.100.7, 130.176.0.1" };
    expect(await addressOf(gateway, chain, 1)).toBe("130.176.0.1");
    expect(await addressOf(gateway, chain, 2)).toBe("198.51.100.7");
    expect(await addressOf(gateway, { "x-forwarded-for": "198.51.100.7" }, 2)).toBe("198.51.100.7");
    expect(await addressOf(gateway, {}, 2)).toBe("130.176.0.1");
  });

  test("counting keys: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64, anything else none", () => {
    expect(addressThrottleKey("198.51.100.7")).toBe("ip:198.51.100.7");
    expect(addressThrottleKey("192.168.0.1/32")).toBe("ip:192.168.0.1");
    expect(addressThrottleKey("::ffff:198.51.100.7")).toBe("ip:198.51.100.7");
    expect(addressThrottleKey("2001:DB8:0:42::1")).toBe("ip:2001:db8:0:42::/64");
    expect(addressThrottleKey("2001:db8:0:42:ffff:ffff:ffff:ffff")).toBe("ip:2001:db8:0:42::/64");
    expect(addressThrottleKey("[::1]")).toBe("ip:0:0:0:0::/64");
    expect(addressThrottleKey("fe80::1%eth0")).toBe("ip:fe80:0:0:0::/64");
    for (const junk of ["", "localhost", "999.1.1.1", "1.2.3", "a@b.c", "::g"]) expect(addressThrottleKey(junk)).toBeUndefined();
  });
});
