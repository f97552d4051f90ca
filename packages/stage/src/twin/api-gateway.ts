import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decodedPath } from "@enclave/core/lambda-http";
import type { StageRoute } from "../capture/model";
import type { Invoke } from "../contracts";

/**
 * API Gateway's HTTP API in front of the twin's functions: each request is matched against the
 * captured route keys as API Gateway matches them, turned into a payload format 2.0 event, and
 * the function's answer turned back into an HTTP response. Gateway errors have API Gateway's
 * own shape (`{"message": ...}`), not the application's.
 */

const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** HTTP APIs give up on an integration after 30 s. */
const INTEGRATION_TIMEOUT_MS = 30_000;

interface CompiledRoute extends StageRoute {
  method: string;
  segments: string[];
  /** The `{name+}` parameter's name, when the path ends in one. */
  greedy: string | undefined;
}

function compile(route: StageRoute): CompiledRoute {
  const [method, path] = route.routeKey.split(" ");
  const segments = (path ?? "/").split("/").filter(Boolean);
  const last = segments.at(-1);
  const greedy = last?.startsWith("{") && last.endsWith("+}") ? last.slice(1, -2) : undefined;
  return { ...route, method: method ?? "ANY", segments: greedy ? segments.slice(0, -1) : segments, greedy };
}

/** The route API Gateway picks for a request: literal segments beat parameters, a method beats ANY, a greedy path comes last. */
export function matchRoute(routes: StageRoute[], method: string, path: string): { route: StageRoute; pathParameters: Record<string, string> } | undefined {
  const parts = path.split("/").filter(Boolean);
  const candidates: { route: CompiledRoute; pathParameters: Record<string, string>; score: number[] }[] = [];
  for (const route of routes.map(compile)) {
    if (route.method !== "ANY" && route.method !== method) continue;
    if (route.greedy ? parts.length <= route.segments.length : parts.length !== route.segments.length) continue;
    const pathParameters: Record<string, string> = {};
    let literals = 0;
    let matches = true;
    route.segments.forEach((segment, index) => {
      const part = parts[index]!;
      if (segment.startsWith("{")) pathParameters[segment.slice(1, -1)] = decodeURIComponent(part);
      else if (segment === part) literals++;
      else matches = false;
    });
    if (!matches) continue;
    if (route.greedy) pathParameters[route.greedy] = parts.slice(route.segments.length).map(decodeURIComponent).join("/");
    candidates.push({ route, pathParameters, score: [route.greedy ? 0 : 1, literals, route.method === "ANY" ? 0 : 1] });
  }
  candidates.sort((a, b) => b.score[0]! - a.score[0]! || b.score[1]! - a.score[1]! || b.score[2]! - a.score[2]!);
  const best = candidates[0];
  return best ? { route: best.route, pathParameters: best.pathParameters } : undefined;
}

const textual = /^(text\/|application\/(json|xml|x-www-form-urlencoded|[a-z.+-]*\+(json|xml)))/i;

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function requestTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

export interface ApiGatewayOptions {
  routes: StageRoute[];
  invoke: Invoke;
  apiId: string;
  accountId: string;
  port?: number;
  host?: string;
  /** The twin's own endpoints under `/_twin/` (inspection, redrive); not part of the stage. */
  control?: (method: string, path: string, body: string) => Promise<{ status: number; body: unknown }>;
}

export interface ApiGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The payload 2.0 event for a request. */
export function payloadV2(
  request: { method: string; url: string; headers: IncomingMessage["headers"]; body: Buffer; sourceIp: string },
  match: { route: StageRoute; pathParameters: Record<string, string> },
  context: { apiId: string; accountId: string; requestId: string; now: Date },
) {
  const [encodedPath = "/", rawQueryString = ""] = request.url.split(/\?(.*)/s);
  // HTTP APIs hand the function the path percent-decoded (`/a%3Fb` arrives as `/a?b`), so the
  // twin does too: the adapter must cope with it.
  const rawPath = decodedPath(encodedPath);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === "cookie") {
      cookies = (Array.isArray(value) ? value.join("; ") : value).split(/;\s*/).filter(Boolean);
      continue;
    }
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) query[key] = key in query ? `${query[key]},${value}` : value;
  const hasBody = request.body.length > 0;
  const isText = textual.test(headers["content-type"] ?? "");
  const domainName = headers.host ?? `${context.apiId}.execute-api.amazonaws.com`;
  return {
    version: "2.0",
    routeKey: match.route.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    ...(rawQueryString ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: context.accountId,
      apiId: context.apiId,
      domainName,
      domainPrefix: domainName.split(".")[0],
      http: { method: request.method, path: rawPath, protocol: "HTTP/1.1", sourceIp: request.sourceIp, userAgent: headers["user-agent"] ?? "" },
      requestId: context.requestId,
      routeKey: match.route.routeKey,
      stage: "$default",
      time: requestTime(context.now),
      timeEpoch: context.now.getTime(),
    },
    ...(Object.keys(match.pathParameters).length > 0 ? { pathParameters: match.pathParameters } : {}),
    ...(hasBody ? { body: isText ? request.body.toString("utf8") : request.body.toString("base64"), isBase64Encoded: !isText } : { isBase64Encoded: false }),
  };
}

interface LambdaResponse {
  statusCode?: number;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
}

function gatewayError(response: ServerResponse, status: number, message: string, requestId: string) {
  response.writeHead(status, { "content-type": "application/json", "apigw-requestid": requestId }).end(JSON.stringify({ message }));
}

export async function startApiGateway(options: ApiGatewayOptions): Promise<ApiGateway> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) return gatewayError(res, 413, "Request Entity Too Large", requestId);
      chunks.push(chunk as Buffer);
    }
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    if (options.control && url.startsWith("/_twin/")) {
      const answer = await options.control(method, url.split("?")[0]!, Buffer.concat(chunks).toString("utf8"));
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
      return;
    }
    const match = matchRoute(options.routes, method, url.split("?")[0]!);
    if (!match) return gatewayError(res, 404, "Not Found", requestId);
    const event = payloadV2(
      { method, url, headers: req.headers, body: Buffer.concat(chunks), sourceIp: req.socket.remoteAddress?.replace(/^::ffff:/, "") ?? "127.0.0.1" },
      match,
      { apiId: options.apiId, accountId: options.accountId, requestId, now: new Date() },
    );
    const outcome = await Promise.race([
      options.invoke(match.route.functionName, event),
      new Promise<"timeout">((resolve) => setTimeout(resolve, INTEGRATION_TIMEOUT_MS, "timeout").unref()),
    ]);
    if (outcome === "timeout") return gatewayError(res, 503, "Service Unavailable", requestId);
    if (!outcome.ok) return gatewayError(res, outcome.timedOut ? 503 : 500, outcome.timedOut ? "Service Unavailable" : "Internal Server Error", requestId);
    const result = outcome.result as LambdaResponse | string | null;
    // A result without a statusCode is the response body, as API Gateway infers it.
    const response: LambdaResponse =
      result !== null && typeof result === "object" && "statusCode" in result
        ? result
        : { statusCode: 200, headers: { "content-type": "application/json" }, body: typeof result === "string" ? result : JSON.stringify(result) };
    const headers: Record<string, string | string[]> = { ...response.headers, "apigw-requestid": requestId };
    for (const [name, values] of Object.entries(response.multiValueHeaders ?? {})) headers[name] = values.join(",");
    if (response.cookies?.length) headers["set-cookie"] = response.cookies;
    const body = response.body === undefined ? Buffer.alloc(0) : Buffer.from(response.body, response.isBase64Encoded ? "base64" : "utf8");
    res.writeHead(response.statusCode ?? 200, headers).end(body);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) gatewayError(res, 500, "Internal Server Error", "twin");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
