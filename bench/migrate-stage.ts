/**
 * Time to migrate a fresh stage: the deploy's migrate function (functions/migrate.ts,
 * `migrateStage`) on an empty PostgreSQL server, per-service topology (a database and two roles
 * per service, every migration applied as the service's owner, grants), all four services,
 * without seeds. Twice per run: through node-postgres, and through the Neon driver (HTTP endpoint
 * and WebSocket for transactions, as deployed) against the local endpoint.
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { openDatabase } from "@enclave/core/db/index";
import { dropRoles, serviceRoles } from "@enclave/core/db/roles";
import { startNeonLocalEndpoint } from "@enclave/core/testing/neon-http-endpoint";
import { sql } from "drizzle-orm";
import { migrateStage } from "../functions/migrate";
import { median, round } from "./lib";

const services = ["auth", "admin", "profile", "payments"];

async function once(serverUrl: string, neonWsProxy?: string): Promise<{ ms: number; migrations: number }> {
  const prefix = `bench${randomBytes(3).toString("hex")}_`;
  const adminUrl = new URL(serverUrl);
  if (neonWsProxy) adminUrl.searchParams.set("driver", "neon");
  const started = performance.now();
  let migrations = 0;
  try {
    const result = await migrateStage({
      adminUrl: adminUrl.toString(),
      topology: "per-service",
      services: services.map((name) => ({ name, runtimePassword: randomBytes(18).toString("base64url") })),
      migrationsDir: resolve(import.meta.dirname, "../migrations"),
      rolePrefix: prefix,
      ...(neonWsProxy ? { neonWsProxy } : {}),
    });
    migrations = result.services.reduce((sum, s) => sum + s.applied.length, 0);
    return { ms: performance.now() - started, migrations };
  } finally {
    const admin = await openDatabase(serverUrl, { maxConnections: 1 });
    try {
      for (const service of services) {
        const roles = serviceRoles(service, { topology: "per-service", prefix });
        await admin.db.execute(sql.raw(`drop database if exists "${roles.database}" with (force)`));
      }
      await dropRoles(
        admin.db,
        services.map((s) => serviceRoles(s, { topology: "per-service", prefix })),
      );
    } finally {
      await admin.close();
    }
  }
}

export interface MigrateFigures {
  runs: number;
  migrations: number;
  pgMs: number;
  neonMs: number;
}

export async function measureMigrateStage(options: { runs: number; serverUrl: string }): Promise<MigrateFigures> {
  const endpoint = await startNeonLocalEndpoint();
  try {
    const pg: number[] = [];
    const neon: number[] = [];
    let migrations = 0;
    for (let i = 0; i < options.runs; i++) {
      const a = await once(options.serverUrl);
      pg.push(a.ms);
      migrations = a.migrations;
      neon.push((await once(options.serverUrl, endpoint.wsProxy)).ms);
    }
    return { runs: options.runs, migrations, pgMs: round(median(pg)), neonMs: round(median(neon)) };
  } finally {
    await endpoint.close();
  }
}
