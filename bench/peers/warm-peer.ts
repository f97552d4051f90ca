/**
 * The warm peer: what a team would write for the same routes with Hono on @hono/node-server,
 * jose for tokens and node-postgres, sending the same SQL the Enclave routes send (recorded at
 * the driver). Usage: `tsx bench/peers/warm-peer.ts <routes.json>`; prints its port.
 */
import { scrypt } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { createLocalJWKSet, importJWK, type JWK, jwtVerify, SignJWT } from "jose";
import pg from "pg";
import { type RecordedStatement, replay } from "./replay";

export interface PeerRoutes {
  databaseUrls: Record<string, string>;
  jwks: { keys: JWK[] };
  signingJwk: JWK;
  passwordCost: number;
  /** Connections per database: the local runtime's pool size. */
  connections: number;
  routes: { method: "GET" | "POST"; path: string; service: string; login?: boolean; statements: RecordedStatement[] }[];
}

const config = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as PeerRoutes;
const pools = new Map(Object.entries(config.databaseUrls).map(([service, url]) => [service, new pg.Pool({ connectionString: url, max: config.connections })]));
const jwks = createLocalJWKSet(config.jwks);
const signingKey = await importJWK(config.signingJwk, "ES256");
const claims = { issuer: "enclave-auth", audience: "enclave" };

const app = new Hono();
for (const route of config.routes) {
  const pool = pools.get(route.service) as pg.Pool;
  app.on(route.method, route.path, async (c) => {
    if (route.login) {
      const body = (await c.req.json()) as { email: string; password: string };
      const [first, ...rest] = route.statements;
      const user = (await pool.query(replay(first as RecordedStatement))).rows[0] as { id: string; role: string } | undefined;
      if (!user) return c.json({ error: "unauthorized" }, 401);
      await new Promise((resolve, reject) =>
        scrypt(body.password, "bench-salt", 32, { N: 2 ** config.passwordCost, r: 8, p: 1 }, (e, key) => (e ? reject(e) : resolve(key))),
      );
      for (const statement of rest) await pool.query(replay(statement));
      const accessToken = await new SignJWT({ role: user.role })
        .setProtectedHeader({ alg: "ES256" })
        .setSubject(user.id)
        .setIssuer(claims.issuer)
        .setAudience(claims.audience)
        .setIssuedAt()
        .setExpirationTime("15m")
        .sign(signingKey);
      return c.json({ user, accessToken });
    }
    const header = c.req.header("authorization") ?? "";
    try {
      await jwtVerify(header.slice(7), jwks, { ...claims, algorithms: ["ES256"] });
    } catch {
      return c.json({ error: "unauthorized" }, 401);
    }
    if (route.method === "POST") await c.req.json();
    let rows: unknown[] = [];
    for (const statement of route.statements) rows = (await pool.query(replay(statement))).rows;
    return c.json({ items: rows }, route.method === "POST" ? 201 : 200);
  });
}

app.onError((error, c) => c.json({ error: String((error as { cause?: unknown }).cause ?? error.message) }, 500));

const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
server.once("listening", () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on("SIGTERM", async () => {
  server.close();
  await Promise.all([...pools.values()].map((p) => p.end()));
  process.exit(0);
});
