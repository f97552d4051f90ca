import { AppError, log, roles, Uuid } from "@enclave/core";
import type { ServiceTokenSigner } from "@enclave/core/http/service-token";
import * as z from "zod/mini";

/** What payments needs of a user, as auth's `user` (API.md) carries it. */
export const DirectoryUser = z.object({ id: Uuid, email: z.string(), name: z.string(), role: z.enum(roles) });
export type DirectoryUser = z.output<typeof DirectoryUser>;
const UserResponse = z.object({ user: DirectoryUser });

/** Auth's routes open to services (API.md), the only ones this client calls. */
export const authRoutes = {
  userByEmail: (email: string) => `/auth/users?email=${encodeURIComponent(email)}`,
} as const;

export interface LookupOptions {
  /** Travels as `x-request-id`, so one id follows the request across services. */
  requestId?: string;
}

/** Users as the auth service knows them. */
export interface UserDirectory {
  /** The user with this email (case-insensitive), or null. Throws AppError `unavailable` when auth cannot answer. */
  findByEmail(email: string, options?: LookupOptions): Promise<DirectoryUser | null>;
}

export type Fetch = (request: Request) => Promise<Response>;

export interface AuthClientOptions {
  /** Where auth is served, e.g. the API's base URL (`https://api.example.com`). */
  baseUrl: string;
  /** Mints this service's short-lived tokens for auth; no secret or user token is ever sent. */
  signer: ServiceTokenSigner;
  /** The transport: global fetch, or the local runtime's in-process one. */
  fetch?: Fetch;
  /** Per attempt. */
  timeoutMs?: number;
  /** Pause before the single retry. */
  retryDelayMs?: number;
  /** How long a found user is reused (seed 003 §4.3: 5 minutes). */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  now?: () => number;
}

class Unavailable extends Error {}

/**
 * A typed client of auth's user lookups: service token per call, a timeout per attempt, at most
 * one retry (5xx, network error or timeout), and a 5-minute cache of found users. Unknown users
 * are not cached, so someone who registers a moment later can be paid at once. When auth cannot
 * answer, callers get AppError `unavailable` (503) and must not go on.
 */
export function createAuthClient(options: AuthClientOptions): UserDirectory {
  const send: Fetch = options.fetch ?? ((request) => fetch(request));
  const timeoutMs = options.timeoutMs ?? 2_000;
  const retryDelayMs = options.retryDelayMs ?? 100;
  const ttl = options.cacheTtlMs ?? 5 * 60_000;
  const maxEntries = options.cacheMaxEntries ?? 1_000;
  const now = options.now ?? Date.now;
  const base = options.baseUrl.replace(/\/+$/, "");
  const cache = new Map<string, { user: DirectoryUser; expires: number }>();

  const remember = (user: DirectoryUser) => {
    const expires = now() + ttl;
    const key = user.email.toLowerCase();
    cache.delete(key);
    cache.set(key, { user, expires });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
  };
  const cached = (key: string) => {
    const hit = cache.get(key);
    if (!hit) return undefined;
    if (hit.expires > now()) return hit.user;
    cache.delete(key);
    return undefined;
  };

  async function attempt(path: string, lookup: LookupOptions): Promise<DirectoryUser | null> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Unavailable(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    // The timeout can fire while nothing awaits it yet (between the steps below): marking it
    // handled here keeps that from being an unhandled rejection, which would end the process.
    timeout.catch(() => undefined);
    try {
      const token = await Promise.race([options.signer.mint("auth"), timeout]);
      const request = new Request(`${base}${path}`, {
        headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(lookup.requestId ? { "x-request-id": lookup.requestId } : {}) },
        signal: controller.signal,
      });
      const response = await Promise.race([send(request), timeout]);
      const text = await Promise.race([response.text(), timeout]);
      // 404: no such user. 400: auth finds the query malformed, so it names no user either.
      if (response.status === 404 || response.status === 400) return null;
      if (response.status >= 500) throw new Unavailable(`auth answered ${response.status}`);
      if (response.status !== 200) {
        // 401/403/429: our credentials or rate are wrong; retrying at once will not help.
        throw new AppError("unavailable", "The user directory is unavailable; retry later.", { cause: new Error(`auth answered ${response.status}`) });
      }
      const parsed = z.safeParse(UserResponse, JSON.parse(text));
      if (!parsed.success)
        throw new AppError("unavailable", "The user directory is unavailable; retry later.", { cause: new Error("unexpected auth response") });
      remember(parsed.data.user);
      return parsed.data.user;
    } catch (error) {
      if (error instanceof AppError || error instanceof Unavailable) throw error;
      throw new Unavailable((error as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  async function lookup(path: string, cacheKey: string, lookupOptions: LookupOptions = {}): Promise<DirectoryUser | null> {
    const hit = cached(cacheKey);
    if (hit) return hit;
    let last: Error | undefined;
    for (let round = 0; round < 2; round++) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      try {
        return await attempt(path, lookupOptions);
      } catch (error) {
        if (error instanceof AppError) {
          log("error", "auth lookup refused", { path: path.split("?")[0], requestId: lookupOptions.requestId, reason: (error.cause as Error)?.message });
          throw error;
        }
        last = error as Error;
      }
    }
    log("warn", "auth unavailable", { path: path.split("?")[0], requestId: lookupOptions.requestId, reason: last?.message });
    throw new AppError("unavailable", "The user directory is unavailable; retry later.");
  }

  return {
    findByEmail: (email, lookupOptions) => lookup(authRoutes.userByEmail(email), email.toLowerCase(), lookupOptions),
  };
}
