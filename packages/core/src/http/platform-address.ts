import type { Context } from "hono";

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

const text = (value: unknown) => (typeof value === "string" && value.trim() !== "" ? value.trim() : undefined);

/**
 * The address a request came from as the platform saw it, never as the client claims it: API
 * Gateway's `requestContext` (HTTP API, then REST API) in Lambda, the socket under the local
 * Node server. Undefined when none says (an in-process call).
 */
export function platformAddress(c: Context): string | undefined {
  const env: unknown = c.env;
  return (
    text(field(env, "requestContext", "http", "sourceIp")) ??
    text(field(env, "requestContext", "identity", "sourceIp")) ??
    text(field(env, "incoming", "socket", "remoteAddress")) ??
    text(field(env, "server", "incoming", "socket", "remoteAddress"))
  );
}

/** The user agent the client sent, else the one API Gateway recorded. */
export function platformUserAgent(c: Context): string | undefined {
  return text(c.req.header("user-agent")) ?? text(field(c.env, "requestContext", "http", "userAgent"));
}
