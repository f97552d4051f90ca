import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import WebSocket from "ws";
import { type NeonProxy, proxyTarget, startNeonProxy } from "./neon-proxy";

/** Opens a WebSocket to the proxy: "open" when it upgraded, else the HTTP status it answered. */
function attempt(url: string): Promise<"open" | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on("open", () => {
      ws.terminate();
      resolve("open");
    });
    ws.on("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("error", () => resolve(0));
  });
}

describe("proxyTarget", () => {
  test("allows only the local PostgreSQL server", () => {
    expect(proxyTarget("/v1?address=127.0.0.1:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
    expect(proxyTarget("/v1?address=localhost:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
    expect(proxyTarget("/v1?address=LOCALHOST:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
  });

  test("refuses every other target", () => {
    const refused = [
      undefined,
      "/v1",
      "/v1?address=",
      "/v1?address=127.0.0.1",
      "/v1?address=127.0.0.1:22",
      "/v1?address=127.0.0.1:5433",
      "/v1?address=127.0.0.1:05432",
      "/v1?address=127.0.0.2:5432",
      "/v1?address=10.0.0.1:5432",
      "/v1?address=169.254.169.254:80",
      "/v1?address=example.com:5432",
      "/v1?address=localhost:5432@evil.example",
      "/v1?address=localhost.evil.example:5432",
      "/v1?address=[::1]:5432",
      "/v1?address=127.0.0.1:5432%0d%0a",
      "/v1?address=127.0.0.1:5432&address=10.0.0.1:5432",
      "/v1?address=10.0.0.1:5432&address=127.0.0.1:5432",
      "/v2?address=127.0.0.1:5432",
      "/v1/x?address=127.0.0.1:5432",
      "http://evil.example/v2?address=127.0.0.1:5432",
    ];
    for (const url of refused) expect(proxyTarget(url), String(url)).toBeUndefined();
  });
});

describe("startNeonProxy", () => {
  let proxy: NeonProxy;
  let decoy: Server;
  let decoyPort: number;
  let decoyConnections = 0;

  beforeAll(async () => {
    proxy = await startNeonProxy();
    decoy = createServer((socket) => {
      decoyConnections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => decoy.listen(0, "127.0.0.1", resolve));
    decoyPort = (decoy.address() as { port: number }).port;
  });
  afterAll(async () => {
    await proxy?.close();
    await new Promise<void>((resolve) => decoy.close(() => resolve()));
  });

  test("listens on 127.0.0.1 and names itself for openDatabase", () => {
    expect(proxy.port).toBeGreaterThan(0);
    expect(proxy.wsProxy).toBe(`127.0.0.1:${proxy.port}/v1`);
  });

  test("is not an open relay: other targets get 403 and no connection is made", async () => {
    const before = proxy.connections;
    for (const address of [`127.0.0.1:${decoyPort}`, `localhost:${decoyPort}`, "example.com:5432", "10.0.0.1:5432", "127.0.0.1:22"]) {
      expect(await attempt(`ws://127.0.0.1:${proxy.port}/v1?address=${address}`), address).toBe(403);
    }
    expect(await attempt(`ws://127.0.0.1:${proxy.port}/v1`)).toBe(403);
    expect(await attempt(`ws://127.0.0.1:${proxy.port}/v2?address=127.0.0.1:5432`)).toBe(403);
    expect(decoyConnections).toBe(0);
    expect(proxy.connections).toBe(before);
    expect(proxy.refused).toEqual(expect.arrayContaining([`127.0.0.1:${decoyPort}`, "example.com:5432", "127.0.0.1:22"]));
  });

  test("accepts the local PostgreSQL server as a target", async () => {
    const before = proxy.connections;
    expect(await attempt(`ws://127.0.0.1:${proxy.port}/v1?address=127.0.0.1:5432`)).toBe("open");
    expect(proxy.connections).toBe(before + 1);
  });

  test("plain HTTP requests are refused", async () => {
    const response = await fetch(`http://127.0.0.1:${proxy.port}/v1?address=127.0.0.1:5432`);
    expect(response.status).toBe(426);
  });
});
