import { createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";
import fc from "fast-check";
import type { Hono } from "hono";
import { handle as honoHandle } from "hono/aws-lambda";
import { afterEach, describe, expect, test, vi } from "vitest";
import * as z from "zod/mini";
import { AppError } from "./errors";
import { createServiceApp } from "./http/app";
import { idempotencyKeyOf } from "./http/idempotency";
import type { AppEnv } from "./http/types";
import { type ApiGatewayV2Event, type ApiGatewayV2Result, handle, installFetchGlobals, LightHeaders, LightResponse, requestFromEvent } from "./lambda-http";
import { type ApiGatewayEventOptions, apiGatewayEvent as sampleEvent } from "./testing/aws-events";

/** Node's own classes, captured before any test replaces the globals. */
const native = { Headers: globalThis.Headers, Response: globalThis.Response };
const useNativeGlobals = () => Object.assign(globalThis, native);
afterEach(useNativeGlobals);

/**
 * The SAM sample event (comma-joined Header2, cookies, repeated query parameters, base64 body)
 * with its placeholders filled in and a request id.
 */
const apiGatewayEvent = (options: ApiGatewayEventOptions) => sampleEvent({ ...options, headers: { "x-request-id": "req-1", ...options.headers } });

const NewItem = z.object({ name: z.string().check(z.minLength(1)) });

/** A service on the kernel with every kind of answer a route gives. */
function demoApp(): Hono<AppEnv> {
  const { app, routes } = createServiceApp({
    name: "demo",
    prefix: "/demo",
    version: "1",
    database: async () => {
      throw new Error("no database here");
    },
    verifier: {
      verify: async () => {
        throw new AppError("unauthorized");
      },
    },
  });
  app.use("/copied", async (c, next) => {
    await next();
    // What a middleware that post-processes a response does: copy it, then change its headers.
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("x-copied", "yes");
  });
  routes
    .add(
      {
        method: "post",
        path: "/items",
        operationId: "createItem",
        summary: "Create",
        access: "public",
        body: NewItem,
        responses: { 201: { description: "Created" } },
      },
      async (c, { body }) =>
        c.json(
          {
            name: body.name,
            query: c.req.queries(),
            cookie: c.req.header("cookie"),
            header2: c.req.header("header2"),
            length: c.req.header("content-length"),
            url: c.req.url,
          },
          201,
        ),
    )
    .add(
      { method: "delete", path: "/items/:id", operationId: "deleteItem", summary: "Delete", access: "public", responses: { 204: { description: "Deleted" } } },
      async (c) => c.body(null, 204),
    )
    .add({ method: "get", path: "/limited", operationId: "limited", summary: "Throttled", access: "public", responses: {} }, async () => {
      throw new AppError("rate_limited", "Slow down.", { headers: { "retry-after": "30" } });
    })
    .add({ method: "get", path: "/session", operationId: "session", summary: "Cookies", access: "public", responses: {} }, async (c) => {
      c.header("set-cookie", "a=1; Path=/; HttpOnly");
      c.header("set-cookie", "b=2; Path=/; Secure", { append: true });
      c.header("cache-control", "no-store");
      return c.json({ ok: true });
    })
    .add({ method: "get", path: "/private", operationId: "getPrivate", summary: "Needs a token", access: "user", responses: {} }, async (c) =>
      c.json({ never: true }),
    );
  app.post("/keyed", (c) => c.json({ key: idempotencyKeyOf(c) }, 201));
  app.get("/text", (c) => c.text("plain text"));
  app.get("/text-status", (c) => c.text("made", 201, { "x-extra": "1" }));
  app.get("/html", (c) => c.html("<p>Zoë</p>"));
  app.get("/binary", (c) => c.body(new Uint8Array([0, 1, 2, 254, 255]), 200, { "content-type": "image/png" }));
  app.get("/stream", (c) =>
    c.body(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("streamed "));
          controller.enqueue(new TextEncoder().encode("body"));
          controller.close();
        },
      }),
      200,
      { "content-type": "text/plain; charset=UTF-8" },
    ),
  );
  app.get("/copied", (c) => c.json({ copied: true }));
  app.get("/classes", (c) => {
    const response = c.json({});
    return c.json({ response: response instanceof Response, headers: response.headers instanceof Headers });
  });
  app.get("/redirect", (c) => c.redirect("/demo/text", 301));
  return app;
}

const app = demoApp();
const lambdaContext = { awsRequestId: "lambda-1" };

/** The same event through Hono's adapter (Node's classes) and ours (light classes installed). */
async function bothAdapters(event: ApiGatewayV2Event): Promise<{ hono: ApiGatewayV2Result; light: ApiGatewayV2Result; plain: ApiGatewayV2Result }> {
  useNativeGlobals();
  const hono = (await honoHandle(app)(structuredClone(event) as never, lambdaContext as never)) as ApiGatewayV2Result;
  const plain = await handle(app)(structuredClone(event), lambdaContext);
  installFetchGlobals();
  const light = await handle(app)(structuredClone(event), lambdaContext);
  useNativeGlobals();
  return { hono, light, plain };
}

const json = { "content-type": "application/json" };
const parse = (result: ApiGatewayV2Result) => JSON.parse(result.isBase64Encoded ? Buffer.from(result.body, "base64").toString("utf8") : result.body);

describe("handle(app) for API Gateway HTTP API events", () => {
  test("201 JSON from a base64 body, with cookies, comma-joined headers and repeated query parameters", async () => {
    const event = apiGatewayEvent({ method: "POST", path: "/demo/items", body: JSON.stringify({ name: "Zoë 🚀" }), headers: json });
    const { hono, light, plain } = await bothAdapters(event);
    expect(light).toEqual(hono);
    expect(plain).toEqual(hono);
    expect(light.statusCode).toBe(201);
    expect(light.isBase64Encoded).toBe(false);
    expect(light.headers["content-type"]).toMatch(/^application\/json/);
    expect(light.headers["x-request-id"]).toBe("req-1");
    expect(parse(light)).toEqual({
      name: "Zoë 🚀",
      query: { parameter1: ["value1", "value2"], parameter2: ["value"] },
      cookie: "cookie1; cookie2",
      header2: "value1,value2",
      length: String(Buffer.byteLength(JSON.stringify({ name: "Zoë 🚀" }))),
      url: "https://id.execute-api.amazonaws.com/demo/items?parameter1=value1&parameter1=value2&parameter2=value",
    });
  });

  test("a body API Gateway did not base64-encode is read as is", async () => {
    const { hono, light } = await bothAdapters(
      apiGatewayEvent({ method: "POST", path: "/demo/items", body: JSON.stringify({ name: "plain" }), base64: false, headers: json }),
    );
    expect(light).toEqual(hono);
    expect(parse(light).name).toBe("plain");
  });

  test("204 without a body", async () => {
    const { hono, light, plain } = await bothAdapters(apiGatewayEvent({ method: "DELETE", path: "/demo/items/42" }));
    expect(light).toEqual(hono);
    expect(plain).toEqual(hono);
    expect(light).toMatchObject({ statusCode: 204, body: "", isBase64Encoded: false });
  });

  test.each([
    ["429 with Retry-After", { method: "GET", path: "/demo/limited" }, 429, "rate_limited", { "retry-after": "30" }],
    ["405 with Allow", { method: "GET", path: "/demo/items" }, 405, "method_not_allowed", { allow: "POST" }],
    ["404 for an unknown path", { method: "GET", path: "/demo/nothing" }, 404, "not_found", {}],
    ["401 without a token", { method: "GET", path: "/demo/private" }, 401, "unauthorized", {}],
    ["400 for malformed JSON", { method: "POST", path: "/demo/items", body: '{"name": ', headers: json }, 400, "malformed_json", {}],
    ["400 for an invalid body", { method: "POST", path: "/demo/items", body: "{}", headers: json }, 400, "validation_failed", {}],
    [
      "415 for a form body",
      { method: "POST", path: "/demo/items", body: "name=x", headers: { "content-type": "application/x-www-form-urlencoded" } },
      415,
      "unsupported_media_type",
      {},
    ],
  ])("an error: %s, in the error shape with its headers", async (_, request, status, code, headers) => {
    const { hono, light, plain } = await bothAdapters(apiGatewayEvent(request));
    expect(light).toEqual(hono);
    expect(plain).toEqual(hono);
    expect(light.statusCode).toBe(status);
    expect(light.headers).toMatchObject({ ...headers, "x-request-id": "req-1" });
    expect(parse(light).error.code).toBe(code);
  });

  test("each Set-Cookie becomes one entry of `cookies`", async () => {
    const { hono, light, plain } = await bothAdapters(apiGatewayEvent({ method: "GET", path: "/demo/session" }));
    expect(light).toEqual(hono);
    expect(plain).toEqual(hono);
    expect(light.cookies).toEqual(["a=1; Path=/; HttpOnly", "b=2; Path=/; Secure"]);
    expect(light.headers).not.toHaveProperty("set-cookie");
    expect(light.headers["cache-control"]).toBe("no-store");
  });

  test.each([
    ["text", "/demo/text", false],
    ["text with a status and headers", "/demo/text-status", false],
    ["HTML", "/demo/html", false],
    ["binary, base64-encoded", "/demo/binary", true],
    ["a stream body", "/demo/stream", false],
    ["a response a middleware copied", "/demo/copied", false],
    ["a redirect", "/demo/redirect", false],
  ])("%s answers as Hono's adapter does", async (_, path, base64) => {
    const { hono, light, plain } = await bothAdapters(apiGatewayEvent({ method: "GET", path }));
    expect(light).toEqual(hono);
    expect(plain).toEqual(hono);
    expect(light.isBase64Encoded).toBe(base64);
  });

  test("binary bodies survive the base64 round trip; HEAD answers without a body", async () => {
    const { light } = await bothAdapters(apiGatewayEvent({ method: "GET", path: "/demo/binary" }));
    expect([...Buffer.from(light.body, "base64")]).toEqual([0, 1, 2, 254, 255]);
    const head = await bothAdapters(apiGatewayEvent({ method: "HEAD", path: "/demo/text" }));
    expect(head.light).toEqual(head.hono);
    expect(head.light).toMatchObject({ statusCode: 200, body: "" });
  });

  test("a copied response keeps its body and the headers set afterwards", async () => {
    const { light } = await bothAdapters(apiGatewayEvent({ method: "GET", path: "/demo/copied" }));
    expect(parse(light)).toEqual({ copied: true });
    expect(light.headers["x-copied"]).toBe("yes");
  });

  test("responses the app builds are Response and Headers instances, and light ones once installed", async () => {
    const { light } = await bothAdapters(apiGatewayEvent({ method: "GET", path: "/demo/classes" }));
    expect(parse(light)).toEqual({ response: true, headers: true });
    installFetchGlobals();
    const response = await app.fetch(requestFromEvent(apiGatewayEvent({ method: "GET", path: "/demo/session" })) as unknown as Request);
    expect(LightResponse.isLight(response)).toBe(true);
    expect(response.headers).toBeInstanceOf(LightHeaders);
    expect(LightResponse.isLight(await app.fetch(requestFromEvent(apiGatewayEvent({ method: "GET", path: "/demo/limited" })) as unknown as Request))).toBe(
      true,
    );
  });

  test("a header no HTTP client can send is 400 Invalid request, as with Hono's adapter", async () => {
    const event = apiGatewayEvent({ method: "GET", path: "/demo/text", headers: { "bad header": "x" } });
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    const { hono, light } = await bothAdapters(event);
    quiet.mockRestore();
    expect(light).toEqual(hono);
    expect(light).toMatchObject({ statusCode: 400, body: "Invalid request" });
  });

  test("a header value beyond Latin-1 reaches the app as Node's HTTP server reads its UTF-8 bytes, as in the local runtime", async () => {
    const values = ["✓ ok", "Zoë ✓", "日本語", "emoji 😀"];
    const readByNode: string[] = [];
    const server = createServer((request, response) => {
      readByNode.push(request.headers["x-name"] as string);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      for (const value of values) {
        await new Promise<void>((resolve, reject) => {
          const socket = connect(port, "127.0.0.1", () =>
            socket.end(
              Buffer.concat([Buffer.from("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Name: "), Buffer.from(value, "utf8"), Buffer.from("\r\n\r\n")]),
            ),
          );
          socket
            .on("data", () => {})
            .on("close", () => resolve())
            .on("error", reject);
        });
      }
    } finally {
      server.close();
    }
    const readByAdapter = values.map((value) =>
      requestFromEvent(apiGatewayEvent({ method: "GET", path: "/demo/text", headers: { "x-name": value } })).headers.get("x-name"),
    );
    expect(readByAdapter).toEqual(readByNode);
    expect(readByNode[0]).toBe(Buffer.from("✓ ok", "utf8").toString("latin1"));
    // A Latin-1 value is already a byte string and passes unchanged.
    expect(requestFromEvent(apiGatewayEvent({ method: "GET", path: "/demo/text", headers: { "x-name": "Zoë" } })).headers.get("x-name")).toBe("Zoë");
  });

  test("a non-ASCII Idempotency-Key is refused with 400 as in the local runtime (Hono's adapter percent-encodes it into a valid key)", async () => {
    for (const key of ["clé", "key-✓", "日本"]) {
      const event = apiGatewayEvent({ method: "POST", path: "/demo/keyed", headers: { "idempotency-key": key } });
      const { hono, light, plain } = await bothAdapters(event);
      expect(light).toEqual(plain);
      expect(light.statusCode).toBe(400);
      expect(parse(light)).toMatchObject({
        error: { code: "validation_failed", details: [{ path: "Idempotency-Key", message: "must be printable ASCII without spaces" }] },
      });
      expect(hono.statusCode).toBe(201);
    }
  });

  test("events in another format (REST API v1) go to Hono's adapter", async () => {
    const v1 = {
      httpMethod: "GET",
      path: "/demo/text",
      headers: { host: "example.com", "x-request-id": "req-1" },
      multiValueHeaders: {},
      queryStringParameters: null,
      body: null,
      isBase64Encoded: false,
      requestContext: { path: "/demo/text" },
    };
    const expected = await honoHandle(app)(structuredClone(v1) as never, lambdaContext as never);
    installFetchGlobals();
    const actual = await handle(app)(structuredClone(v1) as never, lambdaContext);
    useNativeGlobals();
    expect(actual).toEqual(expected);
  });
});

describe("the request object", () => {
  test("reads a base64 body as text, JSON, bytes and a blob; a second read fails", async () => {
    const event = apiGatewayEvent({ method: "POST", path: "/demo/items", body: '{"a":"ü"}', headers: json });
    expect(await requestFromEvent(event).json()).toEqual({ a: "ü" });
    expect(Buffer.from(await requestFromEvent(event).arrayBuffer()).toString("utf8")).toBe('{"a":"ü"}');
    expect(await (await requestFromEvent(event).blob()).text()).toBe('{"a":"ü"}');
    const request = requestFromEvent(event);
    expect(await request.text()).toBe('{"a":"ü"}');
    expect(request.bodyUsed).toBe(true);
    await expect(request.text()).rejects.toThrow(TypeError);
  });

  test("exposes the body as a stream on demand, and parses form bodies", async () => {
    const event = apiGatewayEvent({ method: "POST", path: "/demo/items", body: "a=1&b=two", headers: { "content-type": "application/x-www-form-urlencoded" } });
    const reader = (requestFromEvent(event).body as ReadableStream<Uint8Array>).getReader();
    const { value } = await reader.read();
    expect(Buffer.from(value as Uint8Array).toString("utf8")).toBe("a=1&b=two");
    installFetchGlobals();
    const form = await requestFromEvent(event).formData();
    expect([...form.entries()]).toEqual([
      ["a", "1"],
      ["b", "two"],
    ]);
  });

  test("without a body: null body, empty text, no content-length; clones read independently", async () => {
    const request = requestFromEvent(apiGatewayEvent({ method: "GET", path: "/demo/text" }));
    expect(request.body).toBeNull();
    expect(await request.text()).toBe("");
    expect(request.headers.has("content-length")).toBe(false);
    const withBody = requestFromEvent(apiGatewayEvent({ method: "POST", path: "/demo/items", body: "x" }));
    const copy = withBody.clone();
    expect(await withBody.text()).toBe("x");
    expect(await copy.text()).toBe("x");
  });
});

describe("LightHeaders", () => {
  const names = ["Content-Type", "content-type", "Set-Cookie", "set-cookie", "X-A", "x-b", "Vary"];
  const values = ["a", "b c", " padded\t", "x=1; Path=/", ""];
  const operation = fc.tuple(fc.constantFrom("append", "set", "delete"), fc.constantFrom(...names), fc.constantFrom(...values));

  test("behaves as Node's Headers for any sequence of changes", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 12 }), (operations) => {
        const light = new LightHeaders();
        const node = new native.Headers();
        for (const [op, name, value] of operations) {
          if (op === "delete") {
            light.delete(name);
            node.delete(name);
          } else {
            light[op as "append" | "set"](name, value);
            node[op as "append" | "set"](name, value);
          }
        }
        expect([...light]).toEqual([...node]);
        expect(light.getSetCookie()).toEqual(node.getSetCookie());
        for (const name of names) {
          expect(light.get(name)).toBe(node.get(name));
          expect(light.has(name)).toBe(node.has(name));
        }
        const seen: [string, string][] = [];
        light.forEach((value, name) => {
          seen.push([name, value]);
        });
        expect(seen).toEqual([...node.entries()]);
        expect([...new LightHeaders(light)]).toEqual([...new native.Headers(node)]);
        expect([...light.keys()]).toEqual([...node.keys()]);
        expect([...light.values()]).toEqual([...node.values()]);
      }),
    );
  });

  test("is built from records, pairs and other headers, and rejects what Node's rejects", () => {
    const init = { "Content-Type": "application/json", "X-A": "1" };
    expect([...new LightHeaders(init)]).toEqual([...new native.Headers(init)]);
    const pairs: [string, string][] = [
      ["set-cookie", "a=1"],
      ["Set-Cookie", "b=2"],
      ["x", "1"],
    ];
    expect([...new LightHeaders(pairs)]).toEqual([...new native.Headers(pairs)]);
    expect([...new LightHeaders(new native.Headers(pairs))]).toEqual(
      pairs.map(([n, v]) => [n.toLowerCase(), v]).sort((a, b) => (a[0] as string).localeCompare(b[0] as string)),
    );
    for (const [name, value] of [
      ["bad name", "x"],
      ["x", "a\r\nInjected: 1"],
      ["x", "🚀"],
      ["", "x"],
    ] as const) {
      expect(() => new native.Headers().set(name, value)).toThrow(TypeError);
      expect(() => new LightHeaders().set(name, value)).toThrow(TypeError);
    }
    expect(() => new LightHeaders([["only-one"]] as never)).toThrow(TypeError);
    expect(new native.Headers() instanceof LightHeaders).toBe(true);
  });
});

describe("LightResponse", () => {
  test("defaults as Node's Response does: status 200, text content type for strings, none for bytes", async () => {
    for (const Class of [LightResponse, native.Response] as const) {
      const text = new Class("hi");
      expect([text.status, text.ok, text.statusText, text.headers.get("content-type")]).toEqual([200, true, "", "text/plain;charset=UTF-8"]);
      expect(new Class(new Uint8Array([1])).headers.get("content-type")).toBeNull();
      expect(new Class(new URLSearchParams({ a: "1" })).headers.get("content-type")).toBe("application/x-www-form-urlencoded;charset=UTF-8");
      expect(new Class(new Blob(["x"], { type: "image/gif" })).headers.get("content-type")).toBe("image/gif");
      expect(await new Class(new URLSearchParams({ a: "1 2" })).text()).toBe("a=1+2");
      expect(() => new Class("x", { status: 204 })).toThrow(TypeError);
      expect(() => new Class(null, { status: 199 })).toThrow(RangeError);
      expect(() => new Class(null, { status: 600 })).toThrow(RangeError);
    }
  });

  test("reads a body once, as text, JSON, bytes, an ArrayBuffer or a blob; clones read independently", async () => {
    const response = new LightResponse('{"a":1}', { status: 201, statusText: "Created", headers: { "content-type": "application/json" } });
    const copy = response.clone();
    expect(await response.json()).toEqual({ a: 1 });
    expect(response.bodyUsed).toBe(true);
    await expect(response.text()).rejects.toThrow(TypeError);
    expect([copy.status, copy.statusText, copy.headers.get("content-type")]).toEqual([201, "Created", "application/json"]);
    expect(Buffer.from(await copy.arrayBuffer()).toString()).toBe('{"a":1}');
    expect(await new LightResponse(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).text()).toBe("A");
    expect([...(await new LightResponse(new Uint16Array([1])).bytes())]).toEqual([1, 0]);
    const blob = await new LightResponse("x", { headers: { "content-type": "text/csv" } }).blob();
    expect([blob.type, await blob.text()]).toEqual(["text/csv", "x"]);
  });

  test("a body read as a stream, a copy made from it, and a stream body", async () => {
    const streamed = new LightResponse("chunk");
    const reader = (streamed.body as ReadableStream<Uint8Array>).getReader();
    expect(Buffer.from((await reader.read()).value as Uint8Array).toString()).toBe("chunk");
    expect((await reader.read()).done).toBe(true);

    const original = new LightResponse("kept", { status: 202, headers: { "x-a": "1" } });
    const copy = new LightResponse(original.body, original);
    expect([copy.status, copy.headers.get("x-a"), await copy.text()]).toEqual([202, "1", "kept"]);

    const fromStream = new LightResponse(new native.Response("from a stream").body);
    const clone = fromStream.clone();
    expect(await fromStream.text()).toBe("from a stream");
    expect(await clone.text()).toBe("from a stream");
  });

  test("form data bodies are multipart that Node's Response parses back as it parses its own", async () => {
    const form = new FormData();
    form.append("name", "Zoë\n2");
    form.append("file", new Blob(["content"], { type: "text/plain" }), 'a "b"\n.txt');
    const roundTrip = async (response: Response) => {
      const type = response.headers.get("content-type") as string;
      expect(type).toMatch(/^multipart\/form-data; boundary=/);
      const parsed = await new native.Response(await response.arrayBuffer(), { headers: { "content-type": type } }).formData();
      const file = parsed.get("file") as File;
      return [parsed.get("name"), file.name, file.type, await file.text()];
    };
    const light = await roundTrip(new LightResponse(form) as unknown as Response);
    expect(light).toEqual(await roundTrip(new native.Response(form)));
    expect(light).toEqual(["Zoë\r\n2", expect.any(String), "text/plain", "content"]);
  });

  test("static json, redirect and error; Node's responses pass instanceof", async () => {
    const created = LightResponse.json({ a: 1 }, { status: 201 });
    expect([created.status, created.headers.get("content-type"), await created.text()]).toEqual([201, "application/json", '{"a":1}']);
    expect(LightResponse.json(null, { headers: { "content-type": "application/problem+json" } }).headers.get("content-type")).toBe("application/problem+json");
    const moved = LightResponse.redirect("https://example.com/a b", 308);
    expect([moved.status, moved.headers.get("location")]).toEqual([308, "https://example.com/a%20b"]);
    expect(() => LightResponse.redirect("https://example.com", 200)).toThrow(RangeError);
    expect([LightResponse.error().status, LightResponse.error().type]).toEqual([0, "error"]);
    expect(new native.Response("x") instanceof LightResponse).toBe(true);
    expect({} instanceof LightResponse).toBe(false);
    expect(LightResponse.isLight(new native.Response("x"))).toBe(false);
  });

  test("with the globals installed, Node's fetch takes light Headers and its responses still pass instanceof", async () => {
    const server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ auth: req.headers.authorization, accept: req.headers.accept }));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    try {
      installFetchGlobals();
      const headers = new Headers({ authorization: "Bearer t" });
      headers.append("accept", "application/json");
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers });
      expect(response instanceof Response).toBe(true);
      expect(response.headers instanceof Headers).toBe(true);
      expect(await response.json()).toEqual({ auth: "Bearer t", accept: "application/json" });
    } finally {
      await new Promise((done) => server.close(done));
    }
  });

  test("with the globals installed, form data is still parsed (by Node's class, loaded on demand)", async () => {
    installFetchGlobals();
    expect(globalThis.Response).toBe(LightResponse);
    const form = await new Response("a=1", { headers: { "content-type": "application/x-www-form-urlencoded" } }).formData();
    expect(form.get("a")).toBe("1");
  });
});
