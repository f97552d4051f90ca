import { type Context, Hono } from "hono";
import { PatternRouter } from "hono/router/pattern-router";
import * as z from "zod/mini";
import { AppError } from "../errors";
import { uuidv7 } from "../ids";
import { log } from "../log";
import { renderError } from "./errors";
import { type AnyRouteSpec, Routes } from "./route";
import { cachingVerifier } from "./token-cache";
import type { AppEnv, ServiceDocs, ServiceInfo, TokenVerifier } from "./types";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

export interface ServiceAppOptions extends ServiceInfo {
  verifier: TokenVerifier;
  /** The description and license of the service's OpenAPI document. */
  docs?: ServiceDocs;
}

export const HealthInfo = z.object({
  service: z.string(),
  status: z.enum(["ok", "degraded"]),
  version: z.string(),
  database: z.object({ status: z.enum(["ok", "down"]), latencyMs: z.nullable(z.number()) }),
});

const specsOfApp = new WeakMap<object, readonly AnyRouteSpec[]>();

/**
 * The route specs a service app was built with: what its OpenAPI document describes, with the
 * zod schemas that check the document's examples. Empty for an app that is not a service app.
 */
export function routeSpecsOf(app: Hono<AppEnv>): readonly AnyRouteSpec[] {
  return specsOfApp.get(app) ?? [];
}

/** `payments` → `Payments`, `user-admin` → `UserAdmin`: service names inside operation ids. */
const pascalCase = (name: string) => name.replace(/(?:^|[-_])([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

/**
 * The Hono app every service starts from: request ids, one log line per request, the API.md
 * error model (also for 404 and 405), health with database latency, and OpenAPI 3.1 built
 * from the same schemas that validate requests.
 */
export function createServiceApp(options: ServiceAppOptions): { app: Hono<AppEnv>; routes: Routes<AppEnv> } {
  const app = new Hono<AppEnv>().basePath(options.prefix);
  app.use(requestContext(options.name));
  const verifier = cachingVerifier(options.verifier);
  app.use(async (c, next) => {
    c.set("verifier", verifier);
    await next();
  });
  const routes = new Routes(app);
  specsOfApp.set(app, routes.specs);

  routes.add(
    {
      method: "get",
      path: "/health",
      // Every service has this route: the service's name keeps the id unique across the app.
      operationId: `get${pascalCase(options.name)}Health`,
      summary: "Service and database health",
      description:
        "Whether the service is up and can reach its database, with the database round-trip time. While the database is down it answers 503 with the same body (`status` `degraded`), so load balancers and people read the same thing.",
      access: "public",
      responses: { 200: { description: "Healthy", schema: HealthInfo }, 503: { description: "The database is down", schema: HealthInfo } },
    },
    async (c) => {
      let latencyMs: number | null = null;
      try {
        const database = await options.database();
        latencyMs = await withTimeout(database.ping(), 3_000);
      } catch {
        latencyMs = null;
      }
      const up = latencyMs !== null;
      return c.json(
        { service: options.name, status: up ? "ok" : "degraded", version: options.version, database: { status: up ? "ok" : "down", latencyMs } },
        up ? 200 : 503,
      );
    },
  );

  let openapi: Promise<unknown> | undefined;
  app.get("/openapi.json", async (c) => {
    // Built on first request: the JSON Schema generator is not needed to serve traffic.
    openapi ??= import("./openapi")
      .then((m) => m.buildOpenApi(options, routes.specs))
      .catch((error) => {
        openapi = undefined; // a failed build is retried by the next request, not cached
        throw error;
      });
    return c.json(await openapi);
  });

  finalizeApp(app);
  return { app, routes };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Request ids, logging, JSON 404/405 and error rendering for an app (a service's, or the local
 * runtime's root app that mounts them all).
 */
export function finalizeApp<E extends AppEnv>(app: Hono<E>): Hono<E> {
  let allowRouter: PatternRouter<string> | undefined;
  const allowedMethods = (path: string): string[] => {
    if (!allowRouter) {
      allowRouter = new PatternRouter<string>();
      for (const route of app.routes) {
        if (route.method !== "ALL") allowRouter.add("ALL", route.path, route.method);
      }
    }
    const [matches] = allowRouter.match("GET", path) as [[string, unknown][]];
    return [...new Set(matches.map(([method]) => method))];
  };

  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    if (allow.length > 0 && !allow.includes(c.req.method)) {
      return renderError(new AppError("method_not_allowed", undefined, { headers: { allow: allow.join(", ") } }), c as unknown as Context);
    }
    return renderError(new AppError("not_found", `No route for ${c.req.method} ${c.req.path}.`), c as unknown as Context);
  });
  app.onError((error, c) => renderError(error, c as unknown as Context));
  return app;
}

/**
 * Outermost middleware: request id in and out, one structured log line per request. `service`
 * "*" names the service by the first path segment (the local runtime serves them all).
 */
export function requestContext<E extends AppEnv>(service: string) {
  return async (c: Context<E>, next: () => Promise<void>) => {
    // Already set when a parent app (the local runtime) mounted this one and logs the request.
    if (c.get("requestId")) return next();
    const started = performance.now();
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && requestIdPattern.test(incoming) ? incoming : uuidv7();
    c.set("requestId", requestId);
    c.set("principal", undefined);
    try {
      await next();
    } catch (error) {
      // Hono hands only Error instances to onError; anything else thrown still gets the API.md shape.
      c.res = renderError(error, c as unknown as Context);
    }
    c.res.headers.set("x-request-id", requestId);
    log("info", "request", {
      service: service === "*" ? (c.req.path.split("/")[1] ?? "") : service,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      requestId,
    });
  };
}
