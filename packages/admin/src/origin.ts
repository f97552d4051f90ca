import { platformAddress, platformUserAgent } from "@enclave/core/http/platform-address";
import type { Context } from "hono";

/** Where an admin request came from, as recorded in the audit log. */
export interface RequestOrigin {
  ipAddress: string | null;
  userAgent: string | null;
}

const clip = (value: unknown, max: number): string | null => (typeof value === "string" && value.trim() !== "" ? value.trim().slice(0, max) : null);

/**
 * The caller's address from what the platform saw, not from what the client claims: API
 * Gateway's `requestContext` (HTTP API, then REST API) in Lambda, the socket under the Node
 * server locally. Only without either (an in-process call) is the last `X-Forwarded-For` hop
 * used, the one added by the nearest proxy.
 */
export function requestOrigin(c: Context): RequestOrigin {
  const forwarded = c.req.header("x-forwarded-for")?.split(",").at(-1);
  const ipAddress = clip(platformAddress(c), 64) ?? clip(forwarded, 64);
  const userAgent = clip(platformUserAgent(c), 512);
  return { ipAddress, userAgent };
}
