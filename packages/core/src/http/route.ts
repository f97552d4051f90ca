import type { Context, Hono } from "hono";
import * as z from "zod/mini";
import { AppError } from "../errors";
import { type Access, requireAccess } from "./auth";
import type { AppEnv, Principal } from "./types";

type Schema = z.ZodMiniType;
type Infer<S> = S extends Schema ? z.output<S> : undefined;
export type Method = "get" | "post" | "put" | "patch" | "delete";

export interface ResponseSpec {
  description: string;
  /** The body; an error status (4xx/5xx) without one answers the API.md error shape. */
  schema?: Schema;
  /** Response headers worth documenting besides `x-request-id`, which every response carries. */
  headers?: Record<string, { description: string; schema?: Schema }>;
}

/** A request header the route reads. */
export interface HeaderSpec {
  required: boolean;
  description: string;
  /** What the header accepts, with an example in its metadata; the handler still does the checking. */
  schema?: Schema;
}

export interface RouteSpec<B extends Schema | undefined, Q extends Schema | undefined, P extends Schema | undefined> {
  method: Method;
  /** Hono path below the service prefix, e.g. `/users/:id`. */
  path: string;
  /**
   * The operation's name in generated clients: camelCase, unique across every service of the app
   * (clients of several services share one namespace), and never renamed once published.
   */
  operationId: string;
  summary: string;
  /**
   * What the operation does and answers, for readers of the docs (Markdown). Every operation of
   * the services has one: `npm run docs:lint` and the OpenAPI documents test fail without it.
   */
  description?: string;
  access: Access;
  body?: B;
  query?: Q;
  params?: P;
  /** Request headers the route reads, documented in OpenAPI. */
  headers?: Record<string, HeaderSpec>;
  /**
   * The route's own answers: successes, and the errors only it gives (404, 409, 429…). The ones
   * every route of its kind can give (400 for invalid input, 401/403 when protected, 413/415
   * with a body, 503 when a dependency is down) are added to the docs from the rest of the spec.
   */
  responses: Record<number, ResponseSpec>;
  /**
   * `false` when the route answers without the service's database, so a database outage cannot
   * make it answer 503.
   */
  database?: false;
}

export interface RouteInput<B, Q, P> {
  body: Infer<B>;
  query: Infer<Q>;
  params: Infer<P>;
  principal: Principal | undefined;
}

export type AnyRouteSpec = RouteSpec<Schema | undefined, Schema | undefined, Schema | undefined>;

export const MAX_BODY_BYTES = 1024 * 1024;
const jsonContentType = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/** At most this many problems are listed: a 100 000-element array of wrong items must not answer with megabytes. */
export const MAX_VALIDATION_DETAILS = 20;

/** Turns zod issues into `details` a client can act on: where, and what is wrong. */
export function validationDetails(error: z.core.$ZodError): { path: string; message: string }[] {
  return error.issues.slice(0, MAX_VALIDATION_DETAILS).map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
}

export function parseOrThrow<S extends Schema>(schema: S, value: unknown, where: string): z.output<S> {
  const result = z.safeParse(schema, value);
  if (!result.success) {
    throw new AppError("validation_failed", `The ${where} is not valid.`, { details: validationDetails(result.error) });
  }
  return result.data;
}

/**
 * The body as text, reading at most MAX_BODY_BYTES: a chunked body without a length is cut off
 * (and the stream cancelled) as soon as it is too large, instead of being buffered whole. A body
 * with a declared length (already checked by the caller, and enforced by the HTTP parser; the
 * Lambda adapter's is in memory) is read directly, without a stream.
 */
async function readBodyText(c: Context): Promise<string> {
  const raw = c.req.raw;
  if (c.req.header("content-length") !== undefined || !raw.body || raw.bodyUsed || Object.keys(c.req.bodyCache).length > 0) return c.req.text();
  const reader = raw.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new AppError("payload_too_large");
    }
    chunks.push(value);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  // Later readers (c.req.text()/json()) get the same text; Hono keeps promises in this cache.
  (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(text);
  return text;
}

/** Reads a JSON body with the size, media-type and syntax checks of API.md. */
export async function readJsonBody(c: Context): Promise<unknown> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new AppError("payload_too_large");
  const text = await readBodyText(c);
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new AppError("payload_too_large");
  if (text.trim() === "") return undefined;
  const type = c.req.header("content-type") ?? "";
  if (!jsonContentType.test(type)) throw new AppError("unsupported_media_type");
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("malformed_json");
  }
}

/** Query parameters as an object; a repeated parameter keeps its last value. */
function queryObject(c: Context): Record<string, string> {
  return c.req.query();
}

/**
 * A service's routes: each one is validated at the edge with its zod schemas, guarded by its
 * access rule, and listed (with the same schemas) in the service's OpenAPI document.
 */
export class Routes<E extends AppEnv = AppEnv> {
  readonly specs: AnyRouteSpec[] = [];

  constructor(readonly app: Hono<E>) {}

  add<B extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, P extends Schema | undefined = undefined>(
    spec: RouteSpec<B, Q, P>,
    handler: (c: Context<E>, input: RouteInput<B, Q, P>) => Response | Promise<Response>,
  ): this {
    this.specs.push(spec as AnyRouteSpec);
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      const principal = await requireAccess(c as unknown as Context<AppEnv>, spec.access);
      const params = spec.params ? parseOrThrow(spec.params, c.req.param(), "path") : undefined;
      const query = spec.query ? parseOrThrow(spec.query, queryObject(c), "query string") : undefined;
      const body = spec.body ? parseOrThrow(spec.body, await readJsonBody(c), "request body") : undefined;
      return handler(c, { body, query, params, principal } as RouteInput<B, Q, P>);
    });
    return this;
  }
}
