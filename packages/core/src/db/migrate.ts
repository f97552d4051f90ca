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
  /** False when the file's first line is {@link noTransactionMarker}. */
  transactional: boolean;
}

/**
 * First line of a migration that must not run inside a transaction (`CREATE INDEX CONCURRENTLY`,
 * which builds an index without blocking writes, refuses to). Such a file is applied on its own,
 * statement by statement, under the same lock as every other migration; a failure can leave its
 * earlier statements applied, so each statement must be safe to run again (`IF NOT EXISTS`).
 */
export const noTransactionMarker = "-- enclave:no-transaction";

/**
 * How long a transactional migration waits for a table lock before it fails (and can be retried)
 * rather than queueing every later reader and writer of that table behind it.
 */
export const migrationLockTimeout = "5s";

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
        transactional: text.split("\n", 1)[0]?.trim() !== noTransactionMarker,
        statements: text
          .split("--> statement-breakpoint")
          .map((statement) => statement.trim())
          .filter(Boolean),
      };
    }),
  );
}

export const bookkeepingSchema = (service: string) => `${service}_migrations`;

const lockKey = (service: string) => `enclave.migrate.${service}`;

/** Another migrator holds the service's lock. */
class LockBusy extends Error {}

/**
 * A migrator never blocks on the lock inside a statement: a concurrent index build waits for
 * every transaction older than its snapshot, so a migrator blocked on the lock the build's
 * migrator holds would deadlock with it. It tries, and between tries holds no transaction.
 */
async function withLockRetry<T>(attempt: () => Promise<T>): Promise<T> {
  for (let round = 0; ; round++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof LockBusy)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** round, 500)));
    }
  }
}

/** Throws unless every recorded migration is, by position, tag and hash, the journal's. */
function verifyRecorded(service: string, files: MigrationFile[], recorded: { idx: number; tag: string; hash: string }[]): void {
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
}

const failure = (service: string, file: MigrationFile, error: unknown) => {
  const cause = (error as { cause?: { message?: string } }).cause;
  return new MigrationError(service, `${file.tag} failed: ${cause?.message ?? (error as Error).message}`);
};

export interface MigrateOptions {
  /** Runs the migrations as this role (`SET ROLE`), so what they create belongs to it. */
  role?: string;
}

const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Applies a service's pending migrations. Drizzle's own migrator compares timestamps with the
 * last recorded row only, and its bookkeeping table is shared by every service in a database,
 * so a skipped or out-of-order migration passes silently. This runner instead keeps its own
 * table per service, checks every recorded migration against the journal by position, tag and
 * content hash, and applies pending files under an advisory lock, so two concurrent deploys
 * cannot both apply them: consecutive transactional files in one transaction, and a file marked
 * {@link noTransactionMarker} on its own, outside any transaction.
 */
export async function migrate(db: Db, service: string, dir: string, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  if (!/^[a-z][a-z0-9_]*$/.test(service)) throw new MigrationError(service, "service name must be a lower-case identifier");
  const files = await readMigrations(service, dir);
  const schema = bookkeepingSchema(service);
  const applied: string[] = [];
  for (;;) {
    const step = await withLockRetry(() =>
      db.transaction(async (tx) => {
        const [lock] = rowsOf<{ locked: boolean }>(await tx.execute(sql`select pg_try_advisory_xact_lock(hashtext(${lockKey(service)})) as locked`));
        if (!lock?.locked) throw new LockBusy();
        if (options.role) await tx.execute(sql.raw(`set local role ${quoteIdentifier(options.role)}`));
        await tx.execute(sql.raw(`create schema if not exists "${schema}"`));
        await tx.execute(
          sql.raw(
            `create table if not exists "${schema}"."applied" (idx integer primary key, tag text not null, hash text not null, applied_at timestamptz not null default now())`,
          ),
        );
        const recorded = rowsOf<{ idx: number; tag: string; hash: string }>(
          await tx.execute(sql.raw(`select idx, tag, hash from "${schema}"."applied" order by idx`)),
        );
        verifyRecorded(service, files, recorded);
        const pending = files.slice(recorded.length);
        const stop = pending.findIndex((file) => !file.transactional);
        const batch = stop === -1 ? pending : pending.slice(0, stop);
        // Set after the advisory lock: waiting for another migrator is not waiting on a table.
        if (batch.length > 0) await tx.execute(sql.raw(`set local lock_timeout = '${migrationLockTimeout}'`));
        for (const file of batch) {
          for (const statement of file.statements) {
            try {
              await tx.execute(sql.raw(statement));
            } catch (error) {
              throw failure(service, file, error);
            }
          }
          await tx.execute(sql`insert into ${sql.identifier(schema)}."applied" (idx, tag, hash) values (${file.idx}, ${file.tag}, ${file.hash})`);
        }
        return { applied: batch.map((file) => file.tag), next: pending[batch.length] };
      }),
    );
    applied.push(...step.applied);
    if (!step.next) return { applied };
    if (await applyOutsideTransaction(db, service, files, step.next, options)) applied.push(step.next.tag);
  }
}

/** Runs SQL on one session, outside any transaction. */
interface Session {
  query(text: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  release(failed: boolean): void;
}

/** Each PGlite instance is one session shared by its callers: they take turns here instead of the advisory lock. */
const pgliteTurns = new WeakMap<object, Promise<unknown>>();

async function sessionOf(db: Db, service: string, file: MigrationFile): Promise<Session> {
  const client = (db as { $client?: unknown }).$client as
    | { connect?: () => Promise<{ query: Session["query"]; release(error?: unknown): void }>; query?: Session["query"]; exec?: unknown }
    | undefined;
  if (typeof client?.connect === "function") {
    const connection = await client.connect();
    return { query: (text, params) => connection.query(text, params), release: (failed) => connection.release(failed || undefined) };
  }
  if (client && typeof client.query === "function" && typeof client.exec === "function") {
    const previous = pgliteTurns.get(client) ?? Promise.resolve();
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    pgliteTurns.set(
      client,
      previous.then(() => done),
    );
    await previous;
    return { query: client.query.bind(client), release: () => finish() };
  }
  throw new MigrationError(service, `${file.tag} is marked "${noTransactionMarker}" but migrations are running inside a transaction; run them on a database`);
}

/**
 * Applies one non-transactional file under a session-level advisory lock (the same lock the
 * transactional path takes), unless another migrator applied it while this one waited. Returns
 * whether this call applied it.
 */
async function applyOutsideTransaction(db: Db, service: string, files: MigrationFile[], file: MigrationFile, options: MigrateOptions): Promise<boolean> {
  const schema = bookkeepingSchema(service);
  const session = await sessionOf(db, service, file);
  let failed = false;
  let locked = false;
  try {
    await withLockRetry(async () => {
      const { rows } = await session.query("select pg_try_advisory_lock(hashtext($1)) as locked", [lockKey(service)]);
      if (rows[0]?.locked !== true) throw new LockBusy();
    });
    locked = true;
    if (options.role) await session.query(`set role ${quoteIdentifier(options.role)}`);
    const recorded = (await session.query(`select idx, tag, hash from "${schema}"."applied" order by idx`)).rows as {
      idx: number;
      tag: string;
      hash: string;
    }[];
    verifyRecorded(service, files, recorded);
    if (recorded.length > file.idx) return false;
    await dropInvalidIndexes(session, file);
    for (const statement of file.statements) {
      try {
        await session.query(statement);
      } catch (error) {
        throw failure(service, file, error);
      }
    }
    await session.query(`insert into "${schema}"."applied" (idx, tag, hash) values ($1, $2, $3)`, [file.idx, file.tag, file.hash]);
    return true;
  } catch (error) {
    failed = !(error instanceof MigrationError);
    throw error;
  } finally {
    // The connection goes back to a pool: it must not keep the role.
    if (options.role) await session.query("reset role").catch(() => (failed = true));
    if (locked) await session.query("select pg_advisory_unlock(hashtext($1))", [lockKey(service)]).catch(() => (failed = true));
    session.release(failed);
  }
}

const concurrentIndex =
  /^\s*(?:--[^\n]*\n\s*)*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s+on\s+(?:only\s+)?(?:("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*\.)?/i;

/**
 * A concurrent index build that fails (a duplicate under a unique index, a cancelled statement,
 * a killed process) leaves the index behind, marked invalid: never used for reads, still
 * maintained on every write, and in the way of running the statement again (`IF NOT EXISTS`
 * would keep the broken index and record the migration as applied). Before a file runs again,
 * every invalid index its statements build is dropped, concurrently, so the build starts over.
 */
async function dropInvalidIndexes(session: Session, file: MigrationFile): Promise<void> {
  for (const statement of file.statements) {
    const match = concurrentIndex.exec(statement);
    if (!match) continue;
    const [, index, schemaName] = match;
    const name = schemaName ? `${schemaName}.${index}` : (index as string);
    const invalid = await session.query(
      "select i.indexrelid::regclass::text as name from pg_index i where i.indexrelid = to_regclass($1) and not i.indisvalid",
      [name],
    );
    for (const row of invalid.rows) await session.query(`drop index concurrently if exists ${row.name as string}`);
  }
}
