import { Hono } from "hono";
import { expect, test } from "vitest";
import { type RequestOrigin, requestOrigin } from "./origin";

/** What requestOrigin reads from a request with these headers and this platform env. */
async function originOf(headers: Record<string, string>, env?: unknown): Promise<RequestOrigin> {
  const app = new Hono();
  app.get("/", (c) => c.json(requestOrigin(c)));
  const res = await app.request("/", { headers }, env as never);
  return res.json() as Promise<RequestOrigin>;
}

test("API Gateway HTTP API: the source ip API Gateway saw, never the client's X-Forwarded-For", async () => {
  const env = { requestContext: { http: { sourceIp: "198.51.100.7", userAgent: "from-gateway" } } };
  expect(await originOf({ "x-forwarded-for": "6.6.6.6", "user-agent": "curl/8" }, env)).toEqual({ ipAddress: "198.51.100.7", userAgent: "curl/8" });
  expect(await originOf({}, env)).toEqual({ ipAddress: "198.51.100.7", userAgent: "from-gateway" });
});

test("API Gateway REST API", async () => {
  expect(await originOf({}, { requestContext: { identity: { sourceIp: "2001:db8::1" } } })).toEqual({ ipAddress: "2001:db8::1", userAgent: null });
});

test("the Node server locally: the socket's address", async () => {
  expect(await originOf({ "x-forwarded-for": "6.6.6.6" }, { incoming: { socket: { remoteAddress: "::1" } } })).toMatchObject({ ipAddress: "::1" });
  expect(await originOf({}, { server: { incoming: { socket: { remoteAddress: "127.0.0.1" } } } })).toMatchObject({ ipAddress: "127.0.0.1" });
});

test("in-process calls: the hop the nearest proxy added, else nothing", async () => {
  expect(await originOf({ "x-forwarded-for": "6.6.6.6, 203.0.113.9" })).toMatchObject({ ipAddress: "203.0.113.9" });
  expect(await originOf({})).toEqual({ ipAddress: null, userAgent: null });
});

test("long values are clipped", async () => {
  const origin = await originOf({ "user-agent": "a".repeat(2000) });
  expect(origin.userAgent).toHaveLength(512);
});
