import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/pglite";
import type { Db, OpenedDriver } from "./index";

/** `pglite://memory` is an in-memory database; `pglite://<dir>` keeps it in a directory. */
export async function openPglite(url: string, logger: Logger): Promise<OpenedDriver> {
  const location = url.slice("pglite://".length);
  let client: PGlite;
  if (location === "memory" || location === "") {
    client = await PGlite.create();
  } else {
    const dir = resolve(location);
    mkdirSync(dir, { recursive: true });
    client = await PGlite.create(dir);
  }
  return fromPglite(client, logger);
}

export function fromPglite(client: PGlite, logger?: Logger): OpenedDriver {
  const db = drizzle({ client, ...(logger ? { logger } : {}) }) as unknown as Db;
  return { db, rawQuery: (text, params) => client.query(text, params), close: () => client.close() };
}
