import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "drizzle-orm/logger";
import { drizzle } from "drizzle-orm/pglite";
import type { Db, OpenedDriver } from "./index";

let emptyCluster: Promise<Blob> | undefined;

/**
 * A freshly initialised, empty cluster, made once per process. Creating a PGlite database runs
 * initdb (seconds of CPU each); loading this copy takes a fraction of that, so the local
 * runtime's first start initialises once instead of once per service.
 */
function emptyClusterImage(): Promise<Blob> {
  emptyCluster ??= (async () => {
    const scratch = await PGlite.create();
    try {
      return await scratch.dumpDataDir("none");
    } finally {
      await scratch.close();
    }
  })().catch((error) => {
    emptyCluster = undefined;
    throw error;
  });
  return emptyCluster;
}

/** `pglite://memory` is an in-memory database; `pglite://<dir>` keeps it in a directory. */
export async function openPglite(url: string, logger: Logger): Promise<OpenedDriver> {
  const location = url.slice("pglite://".length);
  let client: PGlite;
  if (location === "memory" || location === "") {
    client = await PGlite.create();
  } else {
    const dir = resolve(location);
    const isNew = !existsSync(dir) || readdirSync(dir).length === 0;
    mkdirSync(dir, { recursive: true });
    client = isNew ? await PGlite.create(dir, { loadDataDir: await emptyClusterImage() }) : await PGlite.create(dir);
  }
  return fromPglite(client, logger);
}

export function fromPglite(client: PGlite, logger?: Logger): OpenedDriver {
  const db = drizzle({ client, ...(logger ? { logger } : {}) }) as unknown as Db;
  return { db, rawQuery: (text, params) => client.query(text, params), close: () => client.close() };
}
