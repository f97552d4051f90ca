import { isIP } from "node:net";
import { platformAddress } from "@enclave/core/http/platform-address";
import type { Context } from "hono";

/**
 * The address a request came from, as the platform saw it: API Gateway's `requestContext`
 * (HTTP API, then REST API) in Lambda, the socket under the local Node server. A client writes
 * `X-Forwarded-For` itself, so it is read only when `forwardedForHops` says how many proxies
 * that are trusted append to it (API Gateway counts as one); the client is then the address that
 * many entries from the right. Undefined when nothing says (an in-process call).
 */
export function sourceAddress(c: Context, forwardedForHops = 0): string | undefined {
  if (forwardedForHops > 0) {
    const hops = (c.req.header("x-forwarded-for") ?? "")
      .split(",")
      .map((hop) => hop.trim())
      .filter(Boolean);
    // Fewer entries than trusted proxies: the first is the furthest any trusted proxy saw.
    const client = hops.length > 0 ? hops[Math.max(0, hops.length - forwardedForHops)] : undefined;
    if (client) return client;
  }
  return platformAddress(c);
}

/** The eight groups of an IPv6 address, as numbers; undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16)));
  const start = parse(head);
  const end = tail === undefined ? [] : parse(tail);
  const groups = tail === undefined ? start : [...start, ...new Array(8 - start.length - end.length).fill(0), ...end];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * What sign-in failures are counted against for an address: an IPv4 address as it is, an IPv6
 * address by its /64 (one subscriber usually holds a whole /64, so counting single addresses
 * would let one client rotate through billions), an IPv4-mapped IPv6 address as the IPv4 one.
 * Also accepts the `/32` suffix some gateways' samples carry. Undefined when it is no address.
 */
export function addressThrottleKey(address: string): string | undefined {
  let bare = address.trim().replace(/\/\d{1,3}$/, "");
  if (bare.startsWith("[") && bare.endsWith("]")) bare = bare.slice(1, -1);
  bare = bare.replace(/%.*$/, "");
  const version = isIP(bare);
  if (version === 4) return `ip:${bare}`;
  if (version !== 6) return undefined;
  const groups = ipv6Groups(bare.toLowerCase());
  if (!groups) return undefined;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `ip:${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `ip:${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}
