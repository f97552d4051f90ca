import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-serverless";
import { handle } from "hono/aws-lambda";
import { createLocalJWKSet, jwtVerify } from "jose";
import { benchDatabaseUrl, benchNeonProxy, benchStatement } from "./statement";

/**
 * The stack a team would typically pick for the same Lambda: @hono/zod-openapi routes with zod
 * schemas, jose for the bearer token, drizzle on the Neon WebSocket driver, hono/aws-lambda. It
 * runs the route's statement through drizzle and answers the first row.
 */
neonConfig.wsProxy = (host, port) => `${benchNeonProxy}?address=${host}:${port}`;
neonConfig.useSecureWebSocket = false;
neonConfig.pipelineTLS = false;
neonConfig.pipelineConnect = false;
const db = drizzle({ client: new Pool({ connectionString: benchDatabaseUrl, max: 1 }) });
const jwks = createLocalJWKSet(JSON.parse(process.env.BENCH_JWKS ?? '{"keys":[]}'));
const statement = benchStatement();
const parts = statement.query.split(/\$\d+/);
const query = sql(Object.assign([...parts], { raw: parts }) as TemplateStringsArray, ...statement.params);

const route = createRoute({
  method: "get",
  path: process.env.BENCH_PATH ?? "/auth/me",
  security: [{ bearer: [] }],
  request: { headers: z.object({ authorization: z.string().regex(/^Bearer .+/) }) },
  responses: {
    200: { description: "the row", content: { "application/json": { schema: z.object({ item: z.record(z.string(), z.unknown()) }) } } },
    401: { description: "no valid token", content: { "application/json": { schema: z.object({ error: z.string() }) } } },
  },
});

const app = new OpenAPIHono().openapi(route, async (c) => {
  try {
    await jwtVerify(c.req.valid("header").authorization.slice(7), jwks, { algorithms: ["ES256"] });
  } catch {
    return c.json({ error: "unauthorized" }, 401);
  }
  const result = await db.execute(query);
  return c.json({ item: (result.rows[0] ?? {}) as Record<string, unknown> }, 200);
});

export const handler = handle(app);
