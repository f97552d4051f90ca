/**
 * Request edge cases of the API Gateway adapter, on events built from the recorded SAM sample:
 * HTTP APIs deliver `rawPath` percent-decoded, so characters that are URL syntax (`?`, `#`, `%`)
 * or not allowed in a URL (spaces, non-ASCII) must be escaped again before the app parses the
 * URL; `cookies: []` is no Cookie header; payload 1.0 events get the same path handling.
 */
import fc from "fast-check";
import { Hono } from "hono";
import { afterEach, describe, expect, test } from "vitest";
import { type ApiGatewayV2Event, type ApiGatewayV2Result, encodePath, handle, installFetchGlobals, requestFromEvent } from "./lambda-http";
import { apiGatewayEvent } from "./testing/aws-events";

const native = { Headers: globalThis.Headers, Response: globalThis.Response };
afterEach(() => Object.assign(globalThis, native));

/** Echoes what a route sees of the request. */
const app = new Hono();
app.all("/files/:name", (c) =>
  c.json({
    name: c.req.param("name"),
    pathname: new URL(c.req.url).pathname,
    query: c.req.queries(),
    cookie: c.req.header("cookie") ?? null,
    hasCookie: c.req.raw.headers.has("cookie"),
    header2: c.req.header("header2") ?? null,
  }),
);
app.post("/echo", async (c) => c.json({ body: await c.req.text(), cookie: c.req.header("cookie") ?? null }));

const body = (result: ApiGatewayV2Result) => JSON.parse(result.isBase64Encoded ? Buffer.from(result.body, "base64").toString("utf8") : result.body);

/** The sample event for GET `rawPath` exactly as API Gateway would pass it (decoded), with `query`. */
function decodedEvent(rawPath: string, query = "x=1"): ApiGatewayV2Event {
  const event = apiGatewayEvent({ method: "GET", path: "/files/placeholder", query });
  event.rawPath = rawPath;
  event.requestContext.http.path = rawPath;
  return event;
}

async function send(event: ApiGatewayV2Event, light = true) {
  if (light) installFetchGlobals();
  const result = await handle(app)(structuredClone(event), { awsRequestId: "edge-1" });
  return { status: result.statusCode, body: body(result) };
}

describe("paths API Gateway delivered decoded", () => {
  const cases: [string, string][] = [
    ["#", "a#b"],
    ["?", "a?b"],
    ["a bare %", "100%"],
    ["% before two hex digits that are not an escape of it", "50%zz"],
    ["spaces", "with space"],
    ["unicode", "Zoë 🚀 日本"],
    ["quotes, brackets and backslash", 'a"<b>\\c{d}|e^f`g'],
    ["a control character", "tab\there"],
  ];
  for (const [what, segment] of cases) {
    test(`${what}: the route gets the segment whole, the query is the real one`, async () => {
      for (const light of [true, false]) {
        const { status, body: seen } = await send(decodedEvent(`/files/${segment}`), light);
        expect(status).toBe(200);
        expect(seen.name).toBe(segment);
        expect(seen.query).toEqual({ x: ["1"] });
        expect(seen.pathname).toBe(`/files/${encodePath(segment).slice(1)}`);
      }
    });
  }

  test("a ? in the path does not turn into query parameters, and # does not swallow the query", async () => {
    const question = await send(decodedEvent("/files/me?admin=true", "x=1"));
    expect(question.body).toMatchObject({ name: "me?admin=true", query: { x: ["1"] } });
    const hash = await send(decodedEvent("/files/orders#", "page=2"));
    expect(hash.body).toMatchObject({ name: "orders#", query: { page: ["2"] } });
  });

  test("an encoded path (REST API, function URL) passes through byte for byte", () => {
    for (const path of ["/files/a%23b", "/files/100%25", "/files/Zo%C3%AB", "/files/a%2Fb", "/demo/items"]) expect(encodePath(path)).toBe(path);
    expect(requestFromEvent(decodedEvent("/files/a%23b")).url).toBe("https://id.execute-api.amazonaws.com/files/a%23b?x=1");
  });

  test("a lone surrogate is escaped as U+FFFD instead of failing the request", async () => {
    const { status, body: seen } = await send(decodedEvent("/files/a\ud800b"));
    expect(status).toBe(200);
    expect(seen.name).toBe("a\ufffdb");
  });

  test("any decoded segment reaches the route unchanged", async () => {
    installFetchGlobals();
    const handler = handle(app);
    // `%` followed by two hex digits is ambiguous (an escape, or a decoded `%`) and is read as an escape.
    const character = fc.oneof(
      fc.constantFrom("?", "#", "%", " ", "&", "=", '"', "\\", "é", "🚀", "a", "0", "F"),
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    );
    const segment = fc
      .array(character, { minLength: 1, maxLength: 24 })
      .map((parts) => parts.join(""))
      .filter((s) => !s.includes("/") && !/%[0-9A-Fa-f]{2}/.test(s));
    await fc.assert(
      fc.asyncProperty(segment, async (s) => {
        const result = await handler(decodedEvent(`/files/${s}`), {});
        expect(result.statusCode).toBe(200);
        expect(body(result).name).toBe(Buffer.from(s, "utf8").toString("utf8"));
        expect(body(result).query).toEqual({ x: ["1"] });
      }),
      { numRuns: 300 },
    );
  });
});

describe("headers, cookies and bodies of the recorded sample", () => {
  test("cookies: [] yields no Cookie header at all", async () => {
    const event = decodedEvent("/files/x");
    event.cookies = [];
    for (const light of [true, false]) {
      const { body: seen } = await send(event, light);
      expect(seen.cookie).toBeNull();
      expect(seen.hasCookie).toBe(false);
    }
    expect(requestFromEvent(event).headers.has("cookie")).toBe(false);
  });

  test("cookies are joined with '; ', repeated headers stay comma-joined, a base64 body is decoded", async () => {
    const files = await send(decodedEvent("/files/x"));
    expect(files.body).toMatchObject({ cookie: "cookie1; cookie2", header2: "value1,value2" });
    const event = apiGatewayEvent({ method: "POST", path: "/echo", body: '{"name":"Zoë"}' });
    expect(event.isBase64Encoded).toBe(true);
    expect((await send(event)).body).toEqual({ body: '{"name":"Zoë"}', cookie: "cookie1; cookie2" });
  });

  test("an event without cookies keeps a Cookie header sent among the headers", async () => {
    const event = decodedEvent("/files/x");
    delete event.cookies;
    event.headers = { ...event.headers, cookie: "a=1" };
    expect((await send(event)).body.cookie).toBe("a=1");
  });
});

describe("payload 1.0 events (REST API, or an HTTP API on format 1.0)", () => {
  const v1 = (path: string) => ({
    version: "1.0",
    resource: "/{proxy+}",
    httpMethod: "GET",
    path,
    headers: { host: "example.com", cookie: "c=1" },
    multiValueHeaders: { host: ["example.com"], cookie: ["c=1"], "x-many": ["a", "b"] },
    queryStringParameters: { x: "2" },
    multiValueQueryStringParameters: { x: ["1", "2"] },
    body: null,
    isBase64Encoded: false,
    requestContext: { path, httpMethod: "GET", identity: { sourceIp: "198.51.100.7" } },
  });

  test("a decoded path keeps its # and ?; repeated query parameters arrive", async () => {
    const result = (await handle(app)(v1("/files/a#b?c") as never, {})) as unknown as ApiGatewayV2Result;
    expect(result.statusCode).toBe(200);
    expect(body(result)).toMatchObject({ name: "a#b?c", query: { x: ["1", "2"] }, cookie: "c=1" });
  });

  test("an encoded path is not encoded twice", async () => {
    const result = (await handle(app)(v1("/files/a%23b") as never, {})) as unknown as ApiGatewayV2Result;
    expect(body(result).name).toBe("a#b");
  });
});
