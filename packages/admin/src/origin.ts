import type { Context } from "hono";

/** Where an admin request came from, as recorded in the audit log. */
export interface RequestOrigin {
  ipAddress: string | null;
  userAgent: string | null;
}

const clip = (value: unknown, max: number): string | null => (typeof value === "string" && value.trim() !== "" ? value.trim().slice(0, max) : null);

function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * The caller's address from what the platform saw, not from what the client claims: API
 * Gateway's `requestContext` (HTTP API, then REST API) in Lambda, the socket under the Node
 * server locally. Only without either (an in-process call) is the last `X-Forwarded-For` hop
 * used, the one added by the nearest proxy.
 */
export function requestOrigin(c: Context): RequestOrigin {
  const env: unknown = c.env;
  const forwarded = c.req.header("x-forwarded-for")?.split(",").at(-1);
  const ipAddress =
    clip(field(env, "requestContext", "http", "sourceIp"), 64) ??
    clip(field(env, "requestContext", "identity", "sourceIp"), 64) ??
    clip(field(env, "incoming", "socket", "remoteAddress"), 64) ??
    clip(field(env, "server", "incoming", "socket", "remoteAddress"), 64) ??
    clip(forwarded, 64);
  const userAgent = clip(c.req.header("user-agent"), 512) ?? clip(field(env, "requestContext", "http", "userAgent"), 512);
  return { ipAddress, userAgent };
}
