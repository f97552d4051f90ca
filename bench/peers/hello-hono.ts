import { Hono } from "hono";
import { handle } from "hono/aws-lambda";

/** The smallest Hono Lambda: one route, no database. */
const app = new Hono().get("/auth/.well-known/jwks.json", (c) => c.json({ keys: [] }));

export const handler = handle(app);
