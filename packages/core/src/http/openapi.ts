import * as z from "zod/mini";
import type { AnyRouteSpec } from "./route";
import type { ServiceInfo } from "./types";

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, details: {} },
    },
  },
};

function jsonSchema(schema: z.ZodMiniType, io: "input" | "output"): unknown {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  return rest;
}

/** `/users/:id` → `/users/{id}` */
const openApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** OpenAPI 3.1 from the zod schemas the routes validate with. */
export function buildOpenApi(service: Pick<ServiceInfo, "name" | "prefix" | "version">, specs: AnyRouteSpec[]): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const parameters: unknown[] = [];
    if (spec.params) {
      const shape = jsonSchema(spec.params, "input") as { properties?: Record<string, unknown> };
      for (const [name, schema] of Object.entries(shape.properties ?? {})) parameters.push({ name, in: "path", required: true, schema });
    }
    if (spec.query) {
      const shape = jsonSchema(spec.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(shape.properties ?? {})) {
        parameters.push({ name, in: "query", required: shape.required?.includes(name) ?? false, schema });
      }
    }
    for (const [name, header] of Object.entries(spec.headers ?? {})) {
      parameters.push({ name, in: "header", required: header.required, description: header.description, schema: { type: "string" } });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema ? { content: { "application/json": { schema: jsonSchema(response.schema, "output") } } } : {}),
      };
    }
    responses.default = { description: "Error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
    const path = openApiPath(`${service.prefix}${spec.path === "/" ? "" : spec.path}`);
    paths[path] ??= {};
    paths[path][spec.method] = {
      summary: spec.summary,
      tags: [service.name],
      parameters,
      ...(spec.access === "public" ? { security: [] } : {}),
      ...(spec.body ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(spec.body, "input") } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: `Enclave ${service.name} service`, version: service.version },
    servers: [{ url: "/" }],
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
    },
    security: [{ bearer: [] }],
  };
}
