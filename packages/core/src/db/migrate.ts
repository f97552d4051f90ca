import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { type Db, rowsOf } from "./index";

export interface JournalEntry {
  idx: number;
  tag: string;
  when: number;
}

export interface MigrationFile extends JournalEntry {
  hash: string;
  statements: string[];
}

export class MigrationError extends Error {
  constructor(
    readonly service: string,
    message: string,
  ) {
    super(`[${service}] ${message}`);
    this.name = "MigrationError";
  }
}

/** Reads drizzle-kit's output for one service: the journal and every file it lists. */
export async function readMigrations(service: string, dir: string): Promise<MigrationFile[]> {
  let journal: { entries: JournalEntry[] };
  try {
    journal = JSON.parse(await readFile(join(dir, "meta", "_journal.json"), "utf8"));
  } catch (error) {
    throw new MigrationError(service, `cannot read ${join(dir, "meta", "_journal.json")}: ${(error as Error).message}`);
  }
  if (!Array.isArray(journal?.entries)) throw new MigrationError(service, `${join(dir, "meta", "_journal.json")} has no entries list`);
  for (const entry of journal.entries as unknown[]) {
    const { idx, tag } = (entry ?? {}) as Partial<JournalEntry>;
    // A tag names a file in this folder: nothing else may be read through the journal.
    if (!Number.isInteger(idx) || typeof tag !== "string" || !/^[A-Za-z0-9_-]+$/.test(tag)) {
      throw new MigrationError(service, `journal entry ${JSON.stringify(entry)} is not {idx, tag} with a plain file name`);
    }
  }
  const entries = [...journal.entries].sort((a, b) => a.idx - b.idx);
  entries.forEach((entry, position) => {
    if (entry.idx !== position) {
      throw new MigrationError(service, `journal is not contiguous: expected entry ${position}, found ${entry.idx} (${entry.tag})`);
    }
  });
  return Promise.all(
    entries.map(async (entry) => {
      const raw = await readFile(join(dir, `${entry.tag}.sql`), "utf8").catch(() => {
        throw new MigrationError(service, `journal lists ${entry.tag} but ${entry.tag}.sql is missing`);
      });
      // Hashed with LF line endings, so a CRLF checkout (git autocrlf) is not an "edited" migration.
      const text = raw.replace(/\r\n/g, "\n");
      return {
        ...entry,
        hash: createHash("sha256").update(text).digest("hex"),
        statements: text
          .split("--> statement-breakpoint")
          .map((statement) => statement.trim())
          .filter(Boolean),
      };
    }),
  );
}

export const bookkeepingSchema = (service: string) => `${service}_migrations`;

/**
 * Applies a service's pending migrations. Drizzle's own migrator compares timestamps with the
 * last recorded row only, and its bookkeeping table is shared by every service in a database,
 * so a skipped or out-of-order migration passes silently. This runner instead keeps its own
 * table per service, checks every recorded migration against the journal by position, tag and
 * content hash, and applies all pending files in one transaction under an advisory lock, so two
 * concurrent deploys cannot both apply them.
 */
export async function migrate(db: Db, service: string, dir: string): Promise<{ applied: string[] }> {
  if (!/^[a-z][a-z0-9_]*$/.test(service)) throw new MigrationError(service, "service name must be a lower-case identifier");
  const files = await readMigrations(service, dir);
  const schema = bookkeepingSchema(service);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`enclave.migrate.${service}`}))`);
    await tx.execute(sql.raw(`create schema if not exists "${schema}"`));
    await tx.execute(
      sql.raw(
        `create table if not exists "${schema}"."applied" (idx integer primary key, tag text not null, hash text not null, applied_at timestamptz not null default now())`,
      ),
    );
    const recorded = rowsOf<{ idx: number; tag: string; hash: string }>(
      await tx.execute(sql.raw(`select idx, tag, hash from "${schema}"."applied" order by idx`)),
    );
    recorded.forEach((row, position) => {
      const file = files[row.idx];
      if (row.idx !== position) throw new MigrationError(service, `recorded migrations have a gap before ${row.tag}`);
      if (!file) throw new MigrationError(service, `database has ${row.tag} applied but the journal no longer lists it`);
      if (file.tag !== row.tag) {
        throw new MigrationError(
          service,
          `migration ${row.idx} is ${file.tag} in the journal but ${row.tag} was applied: migrations were reordered or one was merged out of order`,
        );
      }
      if (file.hash !== row.hash) throw new MigrationError(service, `${row.tag} was edited after it was applied (hash mismatch)`);
    });
    const pending = files.slice(recorded.length);
    for (const file of pending) {
      for (const statement of file.statements) {
        try {
          await tx.execute(sql.raw(statement));
        } catch (error) {
          const cause = (error as { cause?: { message?: string } }).cause;
          throw new MigrationError(service, `${file.tag} failed: ${cause?.message ?? (error as Error).message}`);
        }
      }
      await tx.execute(sql`insert into ${sql.identifier(schema)}."applied" (idx, tag, hash) values (${file.idx}, ${file.tag}, ${file.hash})`);
    }
    return { applied: pending.map((file) => file.tag) };
  });
}
