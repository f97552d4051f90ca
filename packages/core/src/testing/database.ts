import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { sql } from "drizzle-orm";
import { type Database, openDatabase, serverUrl } from "../db/index";
import { migrate } from "../db/migrate";

/** The repository's migrations folder of a service. */
export const migrationsDir = (service: string) => resolve(import.meta.dirname, "../../../../migrations", service);

/** `TEST_DATABASE_URL` (a PostgreSQL server) when set; every test database is PGlite otherwise. */
export const testServerUrl = process.env.TEST_DATABASE_URL || undefined;

export interface TestDatabase extends Database {
  url: string;
  /** Drops what the test created (the server database, or the PGlite instance). */
  dispose(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: in-memory PGlite by default, or a new database
 * on the server at TEST_DATABASE_URL (dropped on dispose), so the same tests run on both.
 */
export async function createTestDatabase(services: string[], options: { driver?: "neon"; neonWsProxy?: string } = {}): Promise<TestDatabase> {
  let url = "pglite://memory";
  let dropServerDatabase: (() => Promise<void>) | undefined;
  if (testServerUrl) {
    const name = `enclave_test_${services.join("_")}_${randomBytes(4).toString("hex")}`;
    const admin = await openDatabase(testServerUrl, { maxConnections: 1 });
    await admin.db.execute(sql.raw(`create database "${name}"`));
    await admin.close();
    const target = new URL(serverUrl(testServerUrl));
    target.pathname = `/${name}`;
    if (options.driver === "neon") target.searchParams.set("driver", "neon");
    url = target.toString();
    dropServerDatabase = async () => {
      const again = await openDatabase(testServerUrl as string, { maxConnections: 1 });
      await again.db.execute(sql.raw(`drop database if exists "${name}" with (force)`));
      await again.close();
    };
  }
  const database = await openDatabase(url, { maxConnections: 5, ...(options.neonWsProxy ? { neonWsProxy: options.neonWsProxy } : {}) });
  for (const service of services) await migrate(database.db, service, migrationsDir(service));
  return Object.assign(database, {
    url,
    async dispose() {
      await database.close();
      await dropServerDatabase?.();
    },
  });
}
