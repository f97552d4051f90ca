/**
 * The local runtime (`npm run dev`'s app) served over HTTP in a process of its own, for the warm
 * benchmarks: every service, against the databases named in the environment. Prints its port as
 * the first line. `GET /_bench/statements` answers (and forgets) the statements sent to
 * PostgreSQL since the last call, so the bench can send the same SQL to the driver directly;
 * `GET /_bench/drain` answers once every event delivery in flight has finished.
 * scrypt runs at BENCH_PASSWORD_COST (log2 N), so login throughput measures more than hashing.
 */
import type { AddressInfo } from "node:net";
import type { AuthContext } from "@enclave/auth";
import type { LocalService } from "@enclave/local/registry";
import { createLocalRuntime } from "@enclave/local/runtime";
import { localServices } from "@enclave/local/services";
import { serve } from "@hono/node-server";
import pg from "pg";

const cost = Number(process.env.BENCH_PASSWORD_COST ?? 10);
const services: LocalService[] = localServices.map((service) =>
  service.module.manifest.name !== "auth"
    ? service
    : { ...service, context: async (local) => ({ ...((await service.context(local)) as AuthContext), passwordCost: cost }) as AuthContext },
);

// Statements are recorded only while a request is being answered (the bench sends one at a time
// to record, after background work has settled), with the database each went to.
let recording = false;
let recorded: { database: string; text: string; values: unknown[]; name?: string }[] = [];
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, config: unknown, values?: unknown, callback?: unknown) {
  const database = String(this.database);
  if (!recording) {
    // not a statement of a route
  } else if (typeof config === "string") recorded.push({ database, text: config, values: Array.isArray(values) ? values : [] });
  else if (config && typeof config === "object" && "text" in config) {
    const c = config as { text: string; values?: unknown[]; name?: string };
    recorded.push({ database, text: c.text, values: c.values ?? (Array.isArray(values) ? values : []), ...(c.name ? { name: c.name } : {}) });
  }
  return (query as (...args: unknown[]) => unknown).call(this, config, values, callback);
} as typeof query;

const runtime = await createLocalRuntime({ env: process.env, services });
const server = serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: async (request, env) => {
    // Background work (event deliveries, payment processing) finished: measurements start from quiet.
    if (new URL(request.url).pathname === "/_bench/drain") {
      await runtime.bus.drain();
      return new Response(null, { status: 204 });
    }
    if (new URL(request.url).pathname === "/_bench/statements") {
      const out = recorded;
      recorded = [];
      return Response.json(out);
    }
    if (request.headers.get("x-bench-record") !== "1") return runtime.app.fetch(request, env);
    // Deliveries wait until the route has answered: a consumer's statements are not the route's.
    const bus = runtime.bus as unknown as { schedule(delivery: unknown, ms: number): void };
    const schedule = bus.schedule;
    const held: unknown[] = [];
    bus.schedule = (delivery: unknown) => void held.push(delivery);
    recording = true;
    try {
      const response = await runtime.app.fetch(request, env);
      return new Response(await response.arrayBuffer(), response);
    } finally {
      recording = false;
      bus.schedule = schedule;
      for (const delivery of held) schedule.call(bus, delivery, 0);
    }
  },
});
server.once("listening", () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
const stop = async () => {
  server.close();
  await runtime.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
