import { resolve } from "node:path";
import { describeDatabaseFailure } from "@enclave/core/db/failures";
import { serverUrl } from "@enclave/core/db/index";
import { readMigrations } from "@enclave/core/db/migrate";
import { redactSecrets } from "@enclave/core/log";
import pg from "pg";
import type { Target } from "./config";
import { copyIn, copyOutRows, ident, literal, pauseReading, resumeReading } from "./pg-copy";
import { qualifiedTarget, type Service, type TableMap, tableMaps } from "./tables";

export type SplitMode = "copy" | "dry-run" | "verify-only";

export interface SplitOptions {
  /** The shared database (never written: every transaction on it is read-only). */
  from: string;
  sourceSchema: string;
  targets: Target[];
  mode: SplitMode;
  /** Rows per batch: one source read, one target transaction. */
  batch: number;
  /** Where the report goes, line by line. */
  out: (line: string) => void;
  /** The repository's migrations folder (the targets must have all of it applied). */
  migrationsRoot?: string;
}

export interface Rejection {
  key: string;
  reason: string;
}

export interface Differences {
  /** How many source rows the target lacks, differ in it, and target rows the source does not have. */
  missing: number;
  differing: number;
  onlyInTarget: number;
  /** Some of each, by key (every one, within the narrowing budget). */
  missingKeys: string[];
  differingKeys: string[];
  onlyInTargetKeys: string[];
  /** Chunks holding rows on both sides that differ but were not narrowed to rows (beyond the budget). */
  unexamined: number;
}

export interface TableResult {
  table: string;
  source: number;
  before: number;
  copied: number;
  rejected: Rejection[];
  after: number;
  differences?: Differences;
  verified: boolean;
}

export interface SplitResult {
  ok: boolean;
  /** Preflight problems (a target not migrated, a source table missing): nothing was copied. */
  problems: string[];
  tables: TableResult[];
  /** From the first row read to the last row written. */
  copyMs: number;
  /** What verifying took beyond that (a copy verifies each table as soon as it is copied). */
  verifyMs: number;
  rowsCopied: number;
}

/** A failure the person running the split can act on, said in their terms. */
export class SplitError extends Error {}

const defaultMigrationsRoot = resolve(import.meta.dirname, "../../../migrations");

/** Chunks of the checksum: rows go to one of 16^3 by the md5 of their key. */
const BUCKET_DIGITS = 3;
/** At most this many differing chunks are narrowed to rows (each holds 1/4096 of a table). */
const NARROWING_BUDGET = 256;
/** Ids listed per kind of difference before "and N more". */
const LISTED = 10;

function location(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || "5432"}/${decodeURIComponent(parsed.pathname.slice(1))}`;
  } catch {
    return "(unparsable URL)";
  }
}

async function connect(url: string, variable: string, readOnly: boolean): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: serverUrl(url), application_name: "enclave-split" });
  // A connection lost mid-run fails the statement in flight; the event itself needs no handler.
  client.on("error", () => {});
  try {
    await client.connect();
    // A target's commits need not wait for its disk: a batch lost to a server crash is missing
    // from the target, so the verification names it and a second run copies it.
    await client.query(
      `set timezone to 'UTC'; set datestyle to 'ISO, YMD'; set standard_conforming_strings to on; ${readOnly ? "set session characteristics as transaction read only" : "set synchronous_commit to off"}`,
    );
  } catch (error) {
    await client.end().catch(() => {});
    throw new SplitError(describeDatabaseFailure(variable, url, error) ?? `${variable}: ${redactSecrets((error as Error).message)}`);
  }
  return client;
}

const count = async (client: pg.Client, table: string) => Number((await client.query(`select count(*)::bigint as n from ${table}`)).rows[0].n);

const sourceTable = (schema: string, map: TableMap) => `${ident(schema)}.${ident(map.source)}`;
const targetTable = (map: TableMap) => `${ident(map.service)}.${ident(map.target)}`;
const targetColumns = (map: TableMap) => map.columns.map(([name]) => ident(name)).join(", ");
const mappedSelect = (map: TableMap) => map.columns.map(([name, expression]) => `${expression} as ${ident(name)}`).join(", ");
/** The order rows are appended in (payment history by payment and time, so `seq` follows it). */
const targetOrder = (map: TableMap) => (map.appendOrder ?? [map.key]).map(ident).join(", ");

interface Batch {
  data: Buffer;
  rows: number;
}

/** Batches waiting for the target before the source is made to wait: reading stays ahead of the writers. */
const QUEUED_BATCHES = 2;

/** Where field `index` of a row in COPY text format starts and ends (a raw tab only ever separates fields). */
function fieldBounds(row: Buffer, offset: number, end: number, index: number): [number, number] {
  let start = offset;
  for (let i = 0; i < index; i++) start = row.indexOf(9, start) + 1;
  const tab = row.indexOf(9, start);
  return [start, tab === -1 || tab >= end ? end - 1 : tab];
}

/**
 * Reads a table from the source as one `COPY (select <mapped columns> … order by …) TO STDOUT`
 * and cuts it into batches of `size` rows as it arrives. One statement on the snapshot instead of
 * a query per batch: no keyset positions to look up, and one sort (payment history has no index
 * in its order) instead of one per batch. Rows sharing the map's `wholeBy` value stay in one
 * batch, so batches written side by side cannot interleave them.
 */
function readTable(source: pg.Client, schema: string, map: TableMap, size: number) {
  const queue: Batch[] = [];
  let waiting: (() => void)[] = [];
  let ended = false;
  let failure: unknown;
  let paused = false;
  let buffer = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  let rows = 0;
  /** Where the last row's `wholeBy` field is in `buffer`. */
  let lastGroup: [number, number] = [0, 0];
  const wholeBy = map.wholeBy === undefined ? -1 : map.columns.findIndex(([name]) => name === map.wholeBy);
  const notify = () => {
    for (const wake of waiting) wake();
    waiting = [];
  };
  const flush = () => {
    if (rows === 0) return;
    queue.push({ data: Buffer.from(buffer.subarray(0, used)), rows });
    used = 0;
    rows = 0;
    notify();
  };
  const orderBy = map.order.map(({ column }) => ident(column)).join(", ");
  const reading = copyOutRows(source, `copy (select ${mappedSelect(map)} from ${sourceTable(schema, map)} order by ${orderBy}) to stdout`, (row) => {
    if (rows >= size) {
      if (wholeBy < 0) flush();
      else {
        const [start, end] = fieldBounds(row, 0, row.length, wholeBy);
        if (buffer.compare(row, start, end, lastGroup[0], lastGroup[1]) !== 0) flush();
      }
      if (!paused && queue.length >= QUEUED_BATCHES) {
        paused = true;
        pauseReading(source);
      }
    }
    if (used + row.length > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, used + row.length));
      buffer.copy(grown, 0, 0, used);
      buffer = grown;
    }
    row.copy(buffer, used);
    if (wholeBy >= 0) lastGroup = fieldBounds(buffer, used, used + row.length, wholeBy);
    used += row.length;
    rows++;
  }).then(
    () => {
      flush();
      ended = true;
      notify();
    },
    (error: unknown) => {
      failure = error;
      ended = true;
      notify();
    },
  );
  const resume = () => {
    if (!paused) return;
    paused = false;
    resumeReading(source);
  };
  return {
    /** The next batch, or undefined after the last one. */
    async next(): Promise<Batch | undefined> {
      while (queue.length === 0 && !ended) await new Promise<void>((resolve) => waiting.push(resolve));
      if (failure) throw failure;
      const batch = queue.shift();
      if (queue.length < QUEUED_BATCHES) resume();
      return batch;
    },
    /** Lets the source's socket flow again (a paused one never ends), whatever happened. */
    release() {
      resume();
      return reading;
    },
  };
}

interface DatabaseError {
  code?: string;
  constraint?: string;
  column?: string;
  message: string;
}

/** Errors about the row itself (a constraint, a value): the row is rejected, the copy goes on. */
const isRowError = (error: unknown) => /^2[23]/.test((error as DatabaseError).code ?? "");

function rejectionReason(error: DatabaseError): string {
  switch (error.code) {
    case "23505":
      return `duplicate (unique ${error.constraint})`;
    case "23503":
      return `refers to a row that is not in the target (foreign key ${error.constraint})`;
    case "23502":
      return `no value for ${error.column} (not null)`;
    case "23514":
      return `fails check ${error.constraint}`;
    default:
      return `${redactSecrets(error.message)} (${error.code})`;
  }
}

/**
 * Writes one batch straight into the target table: one `COPY … FROM STDIN`, which is its own
 * transaction. Answers the rows written, or undefined when the target refused the batch (a row
 * already there, or one its constraints reject): nothing of it was written then.
 */
async function writeDirect(target: pg.Client, map: TableMap, data: Buffer): Promise<number | undefined> {
  try {
    return await copyIn(target, `copy ${targetTable(map)} (${targetColumns(map)}) from stdin`, data);
  } catch (error) {
    if (!isRowError(error)) throw error;
    return undefined;
  }
}

/**
 * Writes one batch in one transaction: COPY into a session-local stage table, then insert
 * what the target does not have yet. When the target refuses a row, the batch is bisected under
 * savepoints until each refused row is known; the others are written.
 */
async function writeStaged(target: pg.Client, map: TableMap, stage: string, data: Buffer): Promise<{ copied: number; rejected: Rejection[] }> {
  const columns = targetColumns(map);
  const keyType = map.key === "id" ? "uuid" : "text";
  const insert = (where: string) =>
    `insert into ${targetTable(map)} (${columns}) select ${columns} from ${stage} ${where} order by ${targetOrder(map)} on conflict (${ident(map.key)}) do nothing`;
  await target.query("begin");
  try {
    await copyIn(target, `copy ${stage} (${columns}) from stdin`, data);
    const result = await target.query(insert(""));
    await target.query("commit");
    return { copied: result.rowCount ?? 0, rejected: [] };
  } catch (error) {
    await target.query("rollback");
    if (!isRowError(error)) throw error;
  }
  await target.query("begin");
  try {
    await copyIn(target, `copy ${stage} (${columns}) from stdin`, data);
    const keys = (await target.query({ text: `select ${ident(map.key)}::text from ${stage} order by ${targetOrder(map)}`, rowMode: "array" })).rows.map(
      (row) => row[0] as string,
    );
    const rejected: Rejection[] = [];
    let copied = 0;
    const attempt = async (part: string[]): Promise<void> => {
      await target.query("savepoint split_part");
      try {
        const result = await target.query(insert(`where ${ident(map.key)} = any($1::${keyType}[])`), [part]);
        copied += result.rowCount ?? 0;
        await target.query("release savepoint split_part");
      } catch (error) {
        await target.query("rollback to savepoint split_part");
        await target.query("release savepoint split_part");
        if (!isRowError(error)) throw error;
        if (part.length === 1) {
          rejected.push({ key: part[0] as string, reason: rejectionReason(error as DatabaseError) });
          return;
        }
        const middle = Math.ceil(part.length / 2);
        await attempt(part.slice(0, middle));
        await attempt(part.slice(middle));
      }
    };
    await attempt(keys);
    await target.query("commit");
    return { copied, rejected };
  } catch (error) {
    await target.query("rollback").catch(() => {});
    throw error;
  }
}

/** A connection writing to a service's database, with its session-local stage tables. */
interface Writer {
  client: pg.Client;
  stages: Set<string>;
}

/**
 * Copies one table: the source streams it while the service's writers each write a batch (side
 * by side: the target's work per row, its indexes and checks, is most of a copy's time). A batch
 * goes straight into the table while the target has none of the rows it meets; a batch the
 * target refuses (a row already there, or a row its constraints reject) goes through the stage
 * table, which skips what is there and names what is refused, and the batches after it do too
 * until one meets no row already there. So a fresh target costs one COPY per batch, and a resumed
 * one pays for the conflict handling only where rows are already there.
 */
async function copyTable(
  source: pg.Client,
  writers: Writer[],
  options: SplitOptions,
  map: TableMap,
  table: TableResult,
): Promise<{ copied: number; rejected: Rejection[] }> {
  const name = qualifiedTarget(map);
  const stage = ident(`split_stage_${map.target}`);
  const started = performance.now();
  let lastProgress = started;
  let read = 0;
  let copied = 0;
  const rejected: Rejection[] = [];
  let direct = table.before === 0;
  const reader = readTable(source, options.sourceSchema, map, options.batch);
  const write = async (writer: Writer) => {
    const target = writer.client;
    for (let batch = await reader.next(); batch; batch = await reader.next()) {
      const written = direct ? await writeDirect(target, map, batch.data) : undefined;
      if (written !== undefined) {
        copied += written;
      } else {
        if (!writer.stages.has(stage)) {
          await target.query(
            `create temp table if not exists ${stage} on commit delete rows as select ${targetColumns(map)} from ${targetTable(map)} with no data`,
          );
          writer.stages.add(stage);
        }
        const staged = await writeStaged(target, map, stage, batch.data);
        copied += staged.copied;
        rejected.push(...staged.rejected);
        direct = staged.copied + staged.rejected.length === batch.rows;
      }
      read += batch.rows;
      const now = performance.now();
      if (now - lastProgress >= 2000 && read < table.source) {
        lastProgress = now;
        const rate = Math.round(read / ((now - started) / 1000));
        options.out(`  ${name.padEnd(30)} ${read}/${table.source} (${Math.floor((read / Math.max(table.source, 1)) * 100)}%), ${rate} rows/s`);
      }
    }
  };
  try {
    await Promise.all(writers.map(write));
  } finally {
    reader.release().catch(() => {});
  }
  rejected.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  options.out(
    `  ${name.padEnd(30)} ${read} read: ${copied} copied, ${read - copied - rejected.length} already there, ${rejected.length} rejected (${seconds} s)`,
  );
  return { copied, rejected };
}

/** The rows of a table as compared: key, and the row's canonical text (the record's output, in UTC). */
function comparedRows(map: TableMap, from: string, select: string) {
  return `select t.${ident(map.key)}::text collate "C" as k, t::text collate "C" as r from (select ${select} from ${from}) t`;
}

const bucketOf = `left(md5(k), ${BUCKET_DIGITS})`;

/**
 * Per chunk of keys: the row count and the sum of a 64-bit hash of each row's text. A sum needs
 * no order, so the database aggregates by hashing instead of sorting every row by key (and
 * spilling the sort to disk); `hashtextextended` is the hash PostgreSQL keeps stable across
 * versions for hash partitioning, and the cheapest one it has: most of the cost is making the
 * rows' text. Its value depends on the server's byte order: a little-endian server (x86-64,
 * ARM64) against a big-endian one would show every row as different, never as equal.
 */
async function checksums(client: pg.Client, rows: string): Promise<Map<string, string>> {
  const result = await client.query({
    text: `select ${bucketOf} as b, count(*)::text || ':' || sum(hashtextextended(r, 0))::text from (${rows}) s group by 1`,
    rowMode: "array",
  });
  return new Map(result.rows.map((row) => [row[0] as string, row[1] as string]));
}

async function rowHashes(client: pg.Client, rows: string, buckets: string[]): Promise<Map<string, string>> {
  const result = await client.query({ text: `select k, md5(r) from (${rows}) s where ${bucketOf} = any($1::text[])`, rowMode: "array" }, [buckets]);
  return new Map(result.rows.map((row) => [row[0] as string, row[1] as string]));
}

/**
 * Compares a table, source (mapped) against target, in the databases: a count and a sum of the
 * hashes of the canonical row texts, per chunk of keys, both sides at once; differing chunks are then narrowed
 * to the keys that differ. Rows only in the target (written by a deploy's essential seed, or
 * after a cut-over) are listed but are no error: the split vouches for the source's rows.
 */
async function compareTable(source: pg.Client, target: pg.Client, schema: string, map: TableMap): Promise<{ differences: Differences; targetRows: number }> {
  const sourceRows = comparedRows(map, sourceTable(schema, map), mappedSelect(map));
  const targetRows = comparedRows(map, targetTable(map), targetColumns(map));
  const [sourceSums, targetSums] = await Promise.all([checksums(source, sourceRows), checksums(target, targetRows)]);
  const rows = (sums: Map<string, string>, bucket: string) => Number((sums.get(bucket) ?? "0:").split(":")[0]);
  const targetCount = [...targetSums.keys()].reduce((total, b) => total + rows(targetSums, b), 0);
  const differing = [...new Set([...sourceSums.keys(), ...targetSums.keys()])].filter((b) => sourceSums.get(b) !== targetSums.get(b)).sort();
  // Chunks with rows on both sides need narrowing to say anything; a chunk one side lacks
  // entirely is counted from its row count, and narrowed only to name a few of its rows.
  const mixed = differing.filter((b) => sourceSums.has(b) && targetSums.has(b));
  const oneSided = differing.filter((b) => !(sourceSums.has(b) && targetSums.has(b)));
  const examined = [...mixed, ...oneSided].slice(0, NARROWING_BUDGET);
  const seen = new Set(examined);
  const result: Differences = {
    missing: 0,
    differing: 0,
    onlyInTarget: 0,
    missingKeys: [],
    differingKeys: [],
    onlyInTargetKeys: [],
    unexamined: mixed.filter((b) => !seen.has(b)).length,
  };
  for (const b of oneSided) {
    if (seen.has(b)) continue;
    result.missing += rows(sourceSums, b);
    result.onlyInTarget += rows(targetSums, b);
  }
  if (examined.length === 0) return { differences: result, targetRows: targetCount };
  const [sourceHashes, targetHashes] = await Promise.all([rowHashes(source, sourceRows, examined), rowHashes(target, targetRows, examined)]);
  for (const [key, hash] of sourceHashes) {
    const other = targetHashes.get(key);
    if (other === undefined) result.missingKeys.push(key);
    else if (other !== hash) result.differingKeys.push(key);
  }
  for (const key of targetHashes.keys()) if (!sourceHashes.has(key)) result.onlyInTargetKeys.push(key);
  for (const list of [result.missingKeys, result.differingKeys, result.onlyInTargetKeys]) list.sort();
  result.missing += result.missingKeys.length;
  result.differing += result.differingKeys.length;
  result.onlyInTarget += result.onlyInTargetKeys.length;
  // Chunks that differ although no key does (two source keys mapping to one target key): never "verified".
  if (result.missingKeys.length + result.differingKeys.length + result.onlyInTargetKeys.length === 0) result.unexamined += examined.length;
  return { differences: result, targetRows: targetCount };
}

const isVerified = (d: Differences) => d.missing === 0 && d.differing === 0 && d.unexamined === 0;

/** Up to ten keys of `total`, then how many more. */
function listed(keys: string[], total: number): string {
  const shown = keys.slice(0, LISTED).join(", ");
  return total > Math.min(keys.length, LISTED) ? `${shown} and ${total - Math.min(keys.length, LISTED)} more` : shown;
}

/** Whether the service's database has every migration of this checkout applied, as recorded by our runner. */
async function migrationProblem(client: pg.Client, target: Target, root: string): Promise<string | undefined> {
  const who = `${target.service} (${target.variable})`;
  const files = await readMigrations(target.service, resolve(root, target.service));
  const bookkeeping = `${target.service}_migrations`;
  const exists = (await client.query("select to_regclass($1) as t", [`${ident(bookkeeping)}."applied"`])).rows[0].t;
  if (!exists) return `${who} is not migrated: run \`npm run db:migrate\` against it (or deploy, which migrates) before splitting`;
  const applied = (await client.query(`select idx, tag, hash from ${ident(bookkeeping)}."applied" order by idx`)).rows as {
    idx: number;
    tag: string;
    hash: string;
  }[];
  for (const row of applied) {
    const file = files[row.idx];
    if (!file) return `${who} has migration ${row.tag} applied, which this checkout does not have: split with the checkout that deployed it`;
    if (file.tag !== row.tag || file.hash !== row.hash) return `${who} has ${row.tag} applied differently from this checkout's ${file.tag}`;
  }
  const pending = files.slice(applied.length).map((f) => f.tag);
  if (pending.length > 0) return `${who} is not fully migrated: ${pending.length} pending (${pending.join(", ")}); run \`npm run db:migrate\` against it`;
  return undefined;
}

function reportTable(out: (line: string) => void, tables: TableResult[], mode: SplitMode) {
  const header = ["table", "source", "before", mode === "copy" ? "copied" : "", mode === "copy" ? "rejected" : "", "after", "checksum"];
  const widths = [30, 9, 9, 9, 9, 9, 0];
  const row = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : i === cells.length - 1 ? `  ${cell}` : cell.padStart(widths[i] as number)))
      .join("")
      .trimEnd();
  out(row(header));
  for (const t of tables) {
    const d = t.differences;
    const extra = d && d.onlyInTarget > 0 ? ` (+${d.onlyInTarget} only in target)` : "";
    const status = !d
      ? "not compared"
      : t.verified
        ? `ok${extra}`
        : [d.missing && `${d.missing} missing`, d.differing && `${d.differing} differ`, d.unexamined && `${d.unexamined} chunks not narrowed`]
            .filter(Boolean)
            .join(", ") + extra;
    out(
      row([
        t.table,
        String(t.source),
        String(t.before),
        mode === "copy" ? String(t.copied) : "",
        mode === "copy" ? String(t.rejected.length) : "",
        String(t.after),
        status,
      ]),
    );
  }
  const sum = (pick: (t: TableResult) => number) => String(tables.reduce((total, t) => total + pick(t), 0));
  out(
    row([
      "total",
      sum((t) => t.source),
      sum((t) => t.before),
      mode === "copy" ? sum((t) => t.copied) : "",
      mode === "copy" ? sum((t) => t.rejected.length) : "",
      sum((t) => t.after),
      "",
    ]),
  );
}

/**
 * Moves the shared database's rows into the per-service databases: preflight, copy (unless
 * verifying only or dry-running), verify, report. Safe to run again at any time: rows already
 * in a target are skipped, so a second run, or one after an interruption, copies only what is
 * missing and ends with the same verification.
 */
export async function runSplit(options: SplitOptions): Promise<SplitResult> {
  const { out, mode } = options;
  const result: SplitResult = { ok: false, problems: [], tables: [], copyMs: 0, verifyMs: 0, rowsCopied: 0 };
  const clients: pg.Client[] = [];
  try {
    const source = await connect(options.from, "--from", true);
    clients.push(source);
    // One snapshot for everything read from the source: every table as of one instant, and the
    // verification compares against exactly what was copied even if the source is still written.
    // It is exported so that each service's reader sees the same instant on its own connection.
    await source.query("begin isolation level repeatable read read only");
    const snapshot = (await source.query("select pg_export_snapshot() as s")).rows[0].s as string;
    out(`split: source ${location(options.from)} schema "${options.sourceSchema}" (read-only snapshot), ${mode}, batches of ${options.batch}`);
    out("preflight");
    const present = new Set(
      (
        await source.query("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'p')", [
          options.sourceSchema,
        ])
      ).rows.map((r) => r.relname as string),
    );
    const absent = tableMaps.filter((m) => !present.has(m.source)).map((m) => m.source);
    if (absent.length > 0) {
      result.problems.push(
        `--from: schema "${options.sourceSchema}" has no table ${absent.join(", ")}: is it the shared POC-2 database, and is --source-schema right?`,
      );
    }
    const targets = new Map<Service, pg.Client>();
    for (const target of options.targets) {
      const client = await connect(target.url, target.variable, mode !== "copy");
      clients.push(client);
      targets.set(target.service, client);
      const problem = await migrationProblem(client, target, options.migrationsRoot ?? defaultMigrationsRoot);
      if (problem) result.problems.push(problem);
      else out(`  ${target.service.padEnd(9)} ${target.variable} → ${location(target.url)}: migrated`);
    }
    if (result.problems.length > 0) {
      for (const problem of result.problems) out(`  ${problem}`);
      out("split stopped before copying anything");
      return result;
    }
    // Each service is read on a source connection of its own, in the exported snapshot, and
    // written on its own target connections: the four run at once. Within a service the tables
    // go in order (users before refresh tokens, payments before their history: the foreign keys).
    const openReader = async () => {
      const reader = await connect(options.from, "--from", true);
      clients.push(reader);
      await reader.query("begin isolation level repeatable read read only");
      await reader.query(`set transaction snapshot ${literal(snapshot)}`);
      return reader;
    };
    const serviceList = [...new Set(tableMaps.map((m) => m.service))];
    const readers = new Map(await Promise.all(serviceList.map(async (service) => [service, await openReader()] as const)));
    const perService = async (work: (map: TableMap, index: number, source: pg.Client, target: pg.Client) => Promise<void>) => {
      await Promise.all(
        serviceList.map(async (service) => {
          for (const [i, map] of tableMaps.entries()) {
            if (map.service === service) await work(map, i, readers.get(service) as pg.Client, targets.get(service) as pg.Client);
          }
        }),
      );
    };
    result.tables = tableMaps.map((map) => ({ table: qualifiedTarget(map), source: 0, before: 0, copied: 0, rejected: [], after: 0, verified: false }));
    await perService(async (map, i, reader, target) => {
      const table = result.tables[i] as TableResult;
      [table.source, table.before] = await Promise.all([count(reader, sourceTable(options.sourceSchema, map)), count(target, targetTable(map))]);
    });
    for (const table of result.tables) if (table.before > 0) out(`  ${table.table} already has ${table.before} rows`);
    // Payments in flight are taken over by the due cron after the flip: worth knowing before it.
    const inFlight = (
      await source.query(
        `select status::text as status, count(*)::int as n from ${sourceTable(options.sourceSchema, tableMaps.find((m) => m.source === "payments") as TableMap)} where status::text in ('pending', 'processing') group by 1 order by 1`,
      )
    ).rows as { status: string; n: number }[];
    if (inFlight.length > 0) {
      out(`  source payments in flight: ${inFlight.map((r) => `${r.n} ${r.status}`).join(", ")} (the payments service's due cron takes them over)`);
    }

    const verifyTable = async (i: number, reader: pg.Client, target: pg.Client) => {
      const table = result.tables[i] as TableResult;
      const started = performance.now();
      const compared = await compareTable(reader, target, options.sourceSchema, tableMaps[i] as TableMap);
      out(`  ${table.table.padEnd(30)} ${table.source} rows compared (${((performance.now() - started) / 1000).toFixed(1)} s)`);
      table.differences = compared.differences;
      table.after = compared.targetRows;
      table.verified = isVerified(compared.differences) && table.rejected.length === 0;
    };

    if (mode === "copy") {
      // A table is verified as soon as it is copied, on a second pair of connections per service
      // (the source one in the same snapshot), while the copy goes on with the next table: the
      // verification of the small services is done by the time the largest one's copy ends.
      const checkers = new Map(
        await Promise.all(
          options.targets.map(async (target) => {
            const client = await connect(target.url, target.variable, true);
            clients.push(client);
            return [target.service, { reader: await openReader(), target: client }] as const;
          }),
        ),
      );
      // A second writer for each service with a table whose batches may be written side by side.
      const writers = new Map<Service, Writer[]>(
        await Promise.all(
          options.targets.map(async (target): Promise<[Service, Writer[]]> => {
            const first: Writer = { client: targets.get(target.service) as pg.Client, stages: new Set() };
            if (!tableMaps.some((m) => m.service === target.service && m.sideBySide)) return [target.service, [first]];
            const client = await connect(target.url, target.variable, false);
            clients.push(client);
            return [target.service, [first, { client, stages: new Set<string>() }]];
          }),
        ),
      );
      const verifications = new Map<Service, Promise<void>>();
      out("copy (each table is verified once copied)");
      const started = performance.now();
      await perService(async (map, i, reader) => {
        const table = result.tables[i] as TableResult;
        const own = writers.get(map.service) as Writer[];
        const written = await copyTable(reader, map.sideBySide ? own : own.slice(0, 1), options, map, table);
        table.copied = written.copied;
        table.rejected = written.rejected;
        const checker = checkers.get(map.service) as { reader: pg.Client; target: pg.Client };
        const verified = (verifications.get(map.service) ?? Promise.resolve()).then(() => verifyTable(i, checker.reader, checker.target));
        // Awaited after the copy; until then a failure must not count as unhandled.
        verified.catch(() => {});
        verifications.set(map.service, verified);
      });
      result.rowsCopied = result.tables.reduce((n, t) => n + t.copied, 0);
      const copied = performance.now();
      result.copyMs = copied - started;
      await Promise.all(verifications.values());
      result.verifyMs = performance.now() - copied;
    } else {
      out(mode === "dry-run" ? "compare (dry run: nothing is written)" : "verify");
      const started = performance.now();
      await perService((_map, i, reader, target) => verifyTable(i, reader, target));
      result.verifyMs = performance.now() - started;
    }

    out("report");
    reportTable(out, result.tables, mode);
    for (const t of result.tables) {
      if (t.rejected.length > 0) {
        out(`rejected by ${t.table} (${t.rejected.length}):`);
        for (const r of t.rejected.slice(0, 50)) out(`  ${r.key}: ${r.reason}`);
        if (t.rejected.length > 50) out(`  … and ${t.rejected.length - 50} more`);
      }
      const d = t.differences;
      if (!d) continue;
      const rows = (n: number) => `${n} ${n === 1 ? "row" : "rows"}`;
      if (d.missing > 0) {
        out(`${t.table}: ${rows(d.missing)} of the source not in the target${mode === "dry-run" ? " (to copy)" : ""}: ${listed(d.missingKeys, d.missing)}`);
      }
      if (d.differing > 0) out(`${t.table}: ${rows(d.differing)} different from the source: ${listed(d.differingKeys, d.differing)}`);
      if (d.unexamined > 0) out(`${t.table}: ${d.unexamined} more chunks of keys differ (not narrowed to rows)`);
      if (d.onlyInTarget > 0)
        out(`${t.table}: ${rows(d.onlyInTarget)} only in the target (not from the source): ${listed(d.onlyInTargetKeys, d.onlyInTarget)}`);
    }
    const rate = (rows: number, ms: number) => (ms > 0 ? Math.round(rows / (ms / 1000)) : 0);
    if (mode === "copy") {
      out(
        `copied ${result.rowsCopied} rows in ${(result.copyMs / 1000).toFixed(1)} s (${rate(result.rowsCopied, result.copyMs)} rows/s); verified ${(result.verifyMs / 1000).toFixed(1)} s later`,
      );
    }
    const rejectedRows = result.tables.reduce((n, t) => n + t.rejected.length, 0);
    const unverified = result.tables.filter((t) => !t.verified).map((t) => t.table);
    if (mode === "dry-run") {
      result.ok = true;
      out(unverified.length === 0 ? "dry run: the targets already hold every source row" : `dry run: ${unverified.length} tables to copy; nothing was written`);
    } else if (unverified.length === 0) {
      result.ok = true;
      out("split verified: every source row is in its target, equal to the source");
    } else {
      out(
        `split FAILED: ${[rejectedRows && `${rejectedRows} rows rejected by the targets`, `${unverified.length} tables not verified (${unverified.join(", ")})`]
          .filter(Boolean)
          .join("; ")}`,
      );
    }
    return result;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}
