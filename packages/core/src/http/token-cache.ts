import type { Principal, TokenVerifier } from "./types";

/**
 * Remembers verified tokens until they expire, so a warm function verifies a client's token
 * signature once rather than on every request (ES256 verification dominates a cheap read).
 * Only successes are cached, never longer than the token's own `exp`; the map is bounded.
 */
export function cachingVerifier(verifier: TokenVerifier, maxEntries = 1000): TokenVerifier {
  const cache = new Map<string, { principal: Principal; expiresAt: number }>();
  return {
    async verify(token) {
      const hit = cache.get(token);
      if (hit && hit.expiresAt > Date.now()) return hit.principal;
      if (hit) cache.delete(token);
      const principal = await verifier.verify(token);
      const expiresAt = expiryOf(token);
      if (expiresAt > Date.now()) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
        cache.set(token, { principal, expiresAt });
      }
      return principal;
    },
  };
}

/** `exp` of a JWT that has just been verified (milliseconds); 0 when absent. */
function expiryOf(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" ? payload.exp * 1000 : 0;
  } catch {
    return 0;
  }
}
