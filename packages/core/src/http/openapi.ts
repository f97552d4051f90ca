import { isDeepStrictEqual } from "node:util";
import * as z from "zod/mini";
import { AppError, type ErrorCode, errorStatus } from "../errors";
import type { Access } from "./auth";
import { type AnyRouteSpec, MAX_BODY_BYTES, type ResponseSpec } from "./route";
import type { ServiceDocs, ServiceInfo } from "./types";

type JsonSchema = Record<string, unknown>;

const componentRef = (name: string) => `#/components/schemas/${name}`;
const errorRef = { $ref: componentRef("Error") };
const requestIdHeader = { "X-Request-Id": { $ref: "#/components/headers/RequestId" } };

/** Used when a service states no license of its own: the code and the API are not open source. */
export const PROPRIETARY_LICENSE = { name: "Proprietary", identifier: "LicenseRef-Proprietary" } as const;

const errorSchema = {
  type: "object",
  description: "Every error answer: a stable machine-readable code, a message for humans and, for some codes, details; never internals.",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: {
          type: "string",
          description: `One of ${Object.keys(errorStatus)
            .map((code) => `\`${code}\``)
            .join(", ")}; each always comes with the same HTTP status. More codes may be added.`,
          examples: ["not_found"],
        },
        message: { type: "string", description: "For humans; its wording may change.", examples: ["Not found."] },
        details: {
          description: "Optional. For `validation_failed`: a list of `{path, message}`, one per problem (at most 20).",
          examples: [[{ path: "email", message: "must be an email address" }]],
        },
      },
    },
  },
};

const conventions = `## Conventions shared by every Enclave service

- JSON in, JSON out: send \`Content-Type: application/json\` with every body (at most ${MAX_BODY_BYTES} bytes).
- Authentication: \`Authorization: Bearer <accessToken>\`, the access token from \`POST /auth/register\`, \`POST /auth/login\` or \`POST /auth/refresh\`.
- Errors always have the shape \`{"error": {"code", "message", "details"?}}\` with a stable \`code\` per HTTP status; \`429\` carries \`Retry-After\`, \`405\` carries \`Allow\`.
- Ids are UUIDs, times are ISO-8601 UTC strings, money is a decimal string such as \`"12.50"\` (never a JSON number), currencies are ISO-4217 codes.
- Lists are keyset-paginated: \`limit\` (1 to 100, default 20) and \`cursor\` (the previous page's \`nextCursor\`); a page is \`{"items": [...], "nextCursor": string | null}\`.
- Every response carries \`X-Request-Id\`: the caller's own, when valid, or a new one. Quote it when reporting a problem.
- Responses may gain properties over time: clients should ignore the ones they do not know.`;

/** `/users/:id` → `/users/{id}` */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/**
 * A pattern every client's regex engine reads the same way. Unicode property classes need
 * ECMAScript's `u` flag, which JSON Schema cannot state: without it `[^\p{Cc}]` excludes the
 * letters p, C, c… instead of control characters, and several languages reject `\p` outright.
 * Control characters (Cc) are spelled out as ranges; lone surrogates (Cs), which only a `\u`
 * escape in JSON can produce and the server still rejects, are left to the description.
 */
export function portablePattern(pattern: string): string {
  return pattern.replaceAll("\\p{Cc}", "\\x00-\\x1f\\x7f-\\x9f").replaceAll("\\p{Cs}", "");
}

/**
 * What the document publishes of a generated schema: `#/$defs/X` (where z.toJSONSchema puts named
 * schemas) becomes `#/components/schemas/X`, and patterns become portable.
 */
function publish(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(publish);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => {
      if (key === "$ref" && typeof item === "string" && item.startsWith("#/$defs/")) return [key, componentRef(item.slice("#/$defs/".length))];
      if (key === "pattern" && typeof item === "string") return [key, portablePattern(item)];
      return [key, publish(item)];
    }),
  );
}

/** The examples registered for a schema (or the wrapper around it), for a request. */
export function examplesOf(schema: z.ZodMiniType): unknown[] | undefined {
  const examples = z.globalRegistry.get(schema)?.examples;
  if (Array.isArray(examples)) return examples;
  const inner = (schema._zod.def as { innerType?: z.ZodMiniType }).innerType;
  return inner ? examplesOf(inner) : undefined;
}

type Override = (ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: z.core.JSONSchema.BaseSchema }) => void;

/**
 * Responses may gain properties (API.md: the contract changes only by adding), so a response
 * schema must not tell clients that no other property can appear, as zod's output schemas do.
 */
const openObject: Override = ({ jsonSchema }) => {
  if (jsonSchema.type === "object" && jsonSchema.additionalProperties === false) delete jsonSchema.additionalProperties;
};

/**
 * zod leaves out the examples of a schema that transforms (Money normalizes `"7.5"` to `"7.50"`)
 * when it describes input, as they might be outputs. Ours are always what a client sends.
 */
const keepExamples: Override = ({ zodSchema, jsonSchema }) => {
  const examples = z.globalRegistry.get(zodSchema)?.examples;
  if (Array.isArray(examples) && jsonSchema.examples === undefined) jsonSchema.examples = examples;
};

/**
 * The document's named schemas. A zod schema registered with an `id` in z.globalRegistry (e.g.
 * `User`) becomes `#/components/schemas/User` and is referenced wherever it is used, so client
 * generators give it one type instead of one per operation.
 */
class Components {
  private readonly named: Record<string, JsonSchema> = {};
  private readonly errorCodes = new Set<ErrorCode>();

  /** A reference to the example answer of an error code, listed once under components. */
  errorExample(code: ErrorCode) {
    this.errorCodes.add(code);
    return { $ref: `#/components/examples/${code}` };
  }

  /** The example answers referenced, in API.md's order of codes. */
  errorExamples(): Record<string, unknown> {
    const codes = (Object.keys(errorStatus) as ErrorCode[]).filter((code) => this.errorCodes.has(code));
    const details = { validation_failed: [{ path: "email", message: "must be an email address" }] } as Partial<Record<ErrorCode, unknown>>;
    return Object.fromEntries(
      codes.map((code) => [code, { summary: `${errorStatus[code]} ${code}`, value: new AppError(code, undefined, { details: details[code] }).toBody() }]),
    );
  }

  /** JSON Schema of what a request accepts (`input`) or a response carries (`output`). */
  schema(schema: z.ZodMiniType, io: "input" | "output"): JsonSchema {
    const generated = z.toJSONSchema(schema, {
      io,
      unrepresentable: "any",
      target: "draft-2020-12",
      override: io === "output" ? openObject : keepExamples,
    }) as JsonSchema;
    const { $schema: _dialect, $defs, ...root } = generated;
    for (const [name, definition] of Object.entries(($defs ?? {}) as Record<string, JsonSchema>)) this.add(name, publish(definition) as JsonSchema);
    return publish(root) as JsonSchema;
  }

  /** The schema a `$ref` of this document points to, if it is one of the named ones. */
  resolve(schema: JsonSchema): JsonSchema | undefined {
    const ref = schema.$ref;
    return typeof ref === "string" && ref.startsWith(componentRef("")) ? this.named[ref.slice(componentRef("").length)] : undefined;
  }

  private add(name: string, schema: JsonSchema) {
    const existing = this.named[name];
    // One name, one schema: the same id on an input and an output that differ (defaults, transforms) would make one of them lie.
    if (existing && !isDeepStrictEqual(existing, schema)) throw new Error(`OpenAPI: two different schemas are named ${name}; give them distinct ids.`);
    this.named[name] = schema;
  }

  /** Error first, then by name, so the document reads the same whatever order routes were added in. */
  all(): Record<string, JsonSchema> {
    const sorted = Object.keys(this.named).sort();
    return { Error: errorSchema, ...Object.fromEntries(sorted.map((name) => [name, this.named[name] as JsonSchema])) };
  }
}

const firstExample = (schema: JsonSchema): unknown => (Array.isArray(schema.examples) ? schema.examples[0] : undefined);

/** A parameter's own description and example belong on the parameter, where Swagger UI and generators read them. */
function parameter(name: string, location: "path" | "query" | "header", required: boolean, schema: JsonSchema, description?: string) {
  const { description: schemaDescription, ...rest } = schema;
  const example = firstExample(schema);
  const text = description ?? schemaDescription;
  return { name, in: location, required, ...(text ? { description: text } : {}), schema: rest, ...(example === undefined ? {} : { example }) };
}

function parametersOf(spec: AnyRouteSpec, components: Components): unknown[] {
  const parameters: unknown[] = [];
  if (spec.params) {
    const shape = components.schema(spec.params, "input") as { properties?: Record<string, JsonSchema> };
    for (const [name, schema] of Object.entries(shape.properties ?? {})) parameters.push(parameter(name, "path", true, schema));
  }
  if (spec.query) {
    const shape = components.schema(spec.query, "input") as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(shape.properties ?? {}))
      parameters.push(parameter(name, "query", shape.required?.includes(name) ?? false, schema));
  }
  for (const [name, header] of Object.entries(spec.headers ?? {})) {
    const schema = header.schema ? components.schema(header.schema, "input") : { type: "string" };
    parameters.push(parameter(name, "header", header.required, schema, header.description));
  }
  return parameters;
}

/**
 * The request body. A named body is referenced, and its keywords are repeated beside the `$ref`
 * (OpenAPI 3.1 applies both, and they are the same): generators name the type from the `$ref`,
 * while a reader of the operation alone, or a tool that does not follow references, still sees
 * every field. Its first example is the body "Try it out" sends.
 */
function requestBodyOf(body: z.ZodMiniType, components: Components) {
  const schema = components.schema(body, "input");
  const named = components.resolve(schema);
  const example = examplesOf(body)?.[0];
  return {
    required: true,
    content: { "application/json": { schema: named ? { ...schema, ...named } : schema, ...(example === undefined ? {} : { example }) } },
  };
}

function forbidden(access: Exclude<Access, "public">): string {
  if (access === "user") return "`forbidden`: the token is not a signed-in user's.";
  const who = `${access.roles.join(" or ")} users${access.service ? " and other services of this app" : ""}`;
  return `\`forbidden\`: only ${who} may call this.`;
}

/** The errors a route can answer because of what it is: input to validate, protection, a body, dependencies. */
function commonErrors(spec: AnyRouteSpec): Record<number, string> {
  const errors: Record<number, string> = {};
  if (spec.body) {
    errors[400] = "`validation_failed`: the request does not match its schema (`details` lists every problem), or `malformed_json`: the body is not JSON.";
  } else if (spec.params || spec.query || spec.headers) {
    errors[400] = "`validation_failed`: the path, query or headers do not match their schema; `details` lists every problem.";
  }
  if (spec.access !== "public") {
    errors[401] = "`unauthorized`: the bearer access token is missing, invalid or expired.";
    errors[403] = forbidden(spec.access);
  }
  if (spec.body) {
    errors[413] = `\`payload_too_large\`: the body is larger than ${MAX_BODY_BYTES} bytes.`;
    errors[415] = "`unsupported_media_type`: the body is not sent as `application/json`.";
  }
  if (spec.database !== false || spec.access !== "public") {
    errors[503] =
      "`unavailable`: a dependency (the database, or the keys that verify access tokens) is down or did not answer in time; retry later. A refused request changed nothing; one that timed out may have been applied, so retry a create with the same `Idempotency-Key`.";
  }
  return errors;
}

/** The API.md error shape, with an example of each code this status stands for here. */
function errorContent(status: number, spec: AnyRouteSpec, components: Components) {
  const codes = (Object.entries(errorStatus) as [ErrorCode, number][])
    .filter(([code, codeStatus]) => codeStatus === status && (code !== "malformed_json" || spec.body))
    .map(([code]) => code);
  const examples = Object.fromEntries(codes.map((code) => [code, components.errorExample(code)]));
  return { "application/json": { schema: errorRef, ...(codes.length > 0 ? { examples } : {}) } };
}

function responsesOf(spec: AnyRouteSpec, components: Components): Record<string, unknown> {
  const own: Record<number, ResponseSpec> = spec.responses;
  const derived = commonErrors(spec);
  const statuses = [...new Set([...Object.keys(own), ...Object.keys(derived)].map(Number))].sort((a, b) => a - b);
  const responses: Record<string, unknown> = {};
  for (const status of statuses) {
    const response = own[status];
    const headers: Record<string, unknown> = { ...requestIdHeader };
    for (const [name, header] of Object.entries(response?.headers ?? {})) {
      headers[name] = { description: header.description, schema: header.schema ? components.schema(header.schema, "output") : { type: "string" } };
    }
    const content = response?.schema
      ? { "application/json": { schema: components.schema(response.schema, "output") } }
      : status >= 400
        ? errorContent(status, spec, components)
        : undefined;
    responses[status] = { description: response?.description ?? derived[status], headers, ...(content ? { content } : {}) };
  }
  responses.default = {
    description: "Any other error, in the same shape: `internal` (500) when something failed on the server's side.",
    headers: requestIdHeader,
    content: { "application/json": { schema: errorRef, examples: { internal: components.errorExample("internal") } } },
  };
  return responses;
}

/**
 * OpenAPI 3.1 from the zod schemas the routes validate with: named schemas as components, every
 * error an operation can answer, and an example for every body and parameter.
 */
export function buildOpenApi(service: Pick<ServiceInfo, "name" | "prefix" | "version"> & { docs?: ServiceDocs | undefined }, specs: AnyRouteSpec[]): unknown {
  const components = new Components();
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const path = openApiPath(`${service.prefix}${spec.path === "/" ? "" : spec.path}`);
    paths[path] ??= {};
    paths[path][spec.method] = {
      operationId: spec.operationId,
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      tags: [service.name],
      parameters: parametersOf(spec, components),
      ...(spec.access === "public" ? { security: [] } : {}),
      ...(spec.body ? { requestBody: requestBodyOf(spec.body, components) } : {}),
      responses: responsesOf(spec, components),
    };
  }
  const { docs } = service;
  return {
    openapi: "3.1.0",
    info: {
      title: `Enclave ${service.name} service`,
      version: service.version,
      // A service without docs (a test kernel) publishes only what identifies it.
      ...(docs ? { description: `${docs.description}\n\n${conventions}`, license: docs.license ?? PROPRIETARY_LICENSE } : {}),
    },
    servers: [{ url: "/", description: "This API's own origin: the API Gateway in the cloud, the local runtime in development." }],
    tags: [{ name: service.name, ...(docs ? { description: docs.description } : {}) }],
    paths,
    components: {
      schemas: components.all(),
      examples: components.errorExamples(),
      headers: {
        RequestId: {
          description: "The request's id: the caller's `X-Request-Id` when it is valid, a new one otherwise. It follows the request into events and logs.",
          schema: { type: "string" },
        },
      },
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "An access token from `POST /auth/register`, `POST /auth/login` or `POST /auth/refresh`, signed by the auth service; it expires after minutes, so refresh it. Operations open to other services also accept their service tokens.",
        },
      },
    },
    security: [{ bearer: [] }],
  };
}
