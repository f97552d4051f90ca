/**
 * The warm floor: the same SQL the Enclave routes send, on node-postgres, behind the thinnest
 * HTTP server Node has (node:http, no framework, no token check). What the load loop measures
 * against it is what HTTP and the driver cost by themselves. Usage: `tsx bench/peers/warm-floor.ts
 * <routes.json>` (the warm peer's file); prints its port.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { replay } from "./replay";
import type { PeerRoutes } from "./warm-peer";

const config = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as PeerRoutes;
const pools = new Map(Object.entries(config.databaseUrls).map(([service, url]) => [service, new pg.Pool({ connectionString: url, max: config.connections })]));
const routes = new Map(config.routes.map((route) => [`${route.method} ${route.path}`, route]));

const server = createServer((request, response) => {
  const route = routes.get(`${request.method} ${request.url}`);
  request.resume();
  request.on("end", async () => {
    if (!route) return response.writeHead(404).end();
    try {
      let rows: unknown[] = [];
      for (const statement of route.statements) rows = (await (pools.get(route.service) as pg.Pool).query(replay(statement))).rows;
      const body = JSON.stringify({ items: rows });
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
    } catch (error) {
      response.writeHead(500).end(String(error));
    }
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on("SIGTERM", async () => {
  server.close();
  await Promise.all([...pools.values()].map((p) => p.end()));
  process.exit(0);
});
