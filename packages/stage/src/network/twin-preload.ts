/**
 * Loaded with `node --import <this file>?port=<n>&api=<origins>` into every function process of
 * the twin, before the function's code. It sends to this machine what would leave it:
 * - the Neon driver, left at its defaults, opens `wss://<endpoint host>/v2` with the global
 *   WebSocket: those connections go to the twin's Neon proxy, naming the endpoint in `address`
 *   as Neon's proxy protocol does;
 * - Neon's HTTP SQL endpoint (`https://api.<region>.aws.neon.tech/sql`, requested with
 *   node:https) goes to the same proxy's `/sql`;
 * - `fetch` calls to the stage's own API origins (a service calling another through the API
 *   Gateway URL it was given) go to the twin's gateway.
 * Everything else passes through. The settings travel in this module's own URL, so the
 * function's environment has no extra variable.
 */

const settings = new URL(import.meta.url).searchParams;
const port = Number(settings.get("port"));
const apiOrigins = parseOrigins(settings.get("api"));

function parseOrigins(text: string | null): Map<string, string> {
  try {
    return new Map(Object.entries(JSON.parse(text ?? "{}") as Record<string, string>));
  } catch {
    return new Map();
  }
}

/** The URL a WebSocket to `url` really opens. */
export function twinWebSocketUrl(url: string | URL, proxyPort: number): string | URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (parsed.protocol !== "wss:" && parsed.protocol !== "ws:") return url;
  if (!parsed.hostname.toLowerCase().endsWith(".neon.tech")) return url;
  // The driver's URL has no PostgreSQL port: Neon endpoints listen on 5432.
  return `ws://127.0.0.1:${proxyPort}${parsed.pathname}?address=${parsed.hostname}:5432`;
}

/** Where a request to `url` really goes, when its origin is one of the stage's API origins. */
export function twinFetchUrl(url: string, origins: ReadonlyMap<string, string>): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const local = origins.get(parsed.origin);
  if (!local) return undefined;
  return `${local.replace(/\/+$/, "")}${parsed.pathname}${parsed.search}`;
}

function replaceGlobal(name: "WebSocket" | "fetch", value: unknown): void {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
  Object.defineProperty(globalThis, name, {
    value,
    writable: descriptor?.writable ?? true,
    enumerable: descriptor?.enumerable ?? false,
    configurable: descriptor?.configurable ?? true,
  });
}

const NativeWebSocket = globalThis.WebSocket;
if (NativeWebSocket && Number.isInteger(port) && port > 0) {
  const TwinWebSocket = class extends NativeWebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(twinWebSocketUrl(url, port), protocols);
    }
  };
  Object.defineProperty(TwinWebSocket, "name", { value: "WebSocket" });
  replaceGlobal("WebSocket", TwinWebSocket);
}

/** Where a node:https request for Neon's SQL endpoint really goes, or undefined for any other request. */
export function twinSqlUrl(url: unknown, proxyPort: number): string | undefined {
  if (!(typeof url === "string" || url instanceof URL)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "https:" || parsed.pathname !== "/sql" || !parsed.hostname.toLowerCase().endsWith(".neon.tech")) return undefined;
  return `http://127.0.0.1:${proxyPort}/sql`;
}

if (Number.isInteger(port) && port > 0) {
  const https = process.getBuiltinModule("node:https") as typeof import("node:https");
  const http = process.getBuiltinModule("node:http") as typeof import("node:http");
  const nativeRequest = https.request;
  const agent = new http.Agent({ keepAlive: true });
  https.request = ((url: unknown, options?: unknown, callback?: unknown) => {
    const target = twinSqlUrl(url, port);
    if (!target || typeof options !== "object" || options === null) return (nativeRequest as (...args: unknown[]) => unknown)(url, options, callback);
    return http.request(target, { ...(options as import("node:http").RequestOptions), agent }, callback as never);
  }) as typeof https.request;
}

const nativeFetch = globalThis.fetch;
if (nativeFetch && apiOrigins.size > 0) {
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : input instanceof URL ? input.href : String(input);
    const target = twinFetchUrl(url, apiOrigins);
    if (!target) return nativeFetch(input, init);
    return nativeFetch(input instanceof Request ? new Request(target, input) : target, init);
  };
  replaceGlobal("fetch", fetch);
}
