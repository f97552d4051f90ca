/**
 * Split throughput next to `pg_dump --data-only | psql`, on the same generated POC-2 data and the
 * same server, in one run.
 *
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/split.ts
 *   BENCH_SPLIT_USERS=17000 …   # users to generate; about 12 rows each (17000 ≈ 200k rows)
 *   BENCH_SPLIT_ROUNDS=3 …      # rounds; the figures are medians
 *
 * Method. One source database is generated (fixtures/poc2-schema.sql, `generatePoc2`). Then, in
 * each round, both of these, alternating which goes first (a machine shared with other work
 * drifts; interleaving spreads the drift over both):
 *   - the split, in-process (`runSplit`, as `npm run db:split` runs it, default batch 5000) into
 *     four fresh migrated databases, one per service: copy alone (from its first row read to its
 *     last commit) and copy + verify (preflight, copy, checksums of every table on both sides,
 *     report);
 *   - `pg_dump --data-only <source> | psql <target>`, the target a fresh database holding the same
 *     POC-2 schema: the baseline of moving the same rows with PostgreSQL's own tools (no mapping,
 *     one target, no verification).
 * Rows/s is source rows over wall time; a ratio is the split's rate over the dump's in the same
 * round, and its median is reported. The split's process start (tsx) is left out; pg_dump's and
 * psql's are in. Creating and migrating the fresh databases is not timed.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { generatePoc2, schemaFile } from "@enclave/split/generate";
import { runSplit } from "@enclave/split/split";
import { services } from "@enclave/split/tables";
import { createServerDatabase, createTargets, query, testServerUrl } from "@enclave/split/testing";

export interface SplitBenchRound {
  splitFirst: boolean;
  copyMs: number;
  copyAndVerifyMs: number;
  verified: boolean;
  dumpMs: number;
}

export interface SplitBenchResult {
  rows: number;
  users: number;
  rounds: SplitBenchRound[];
  /** Medians over the rounds. */
  split: { copyMs: number; copyRowsPerSec: number; copyAndVerifyMs: number; copyAndVerifyRowsPerSec: number; verified: boolean };
  pgDumpPsql: { ms: number; rowsPerSec: number; rowsLoaded: number };
  /** The split's rate over the dump's, per round, then the median. */
  ratios: { copy: number; copyAndVerify: number };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

function pipe(from: string, to: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn("bash", ["-o", "pipefail", "-c", 'pg_dump --data-only --no-owner -d "$FROM" | psql -q -v ON_ERROR_STOP=1 -d "$TO" > /dev/null'], {
      env: { PATH: process.env.PATH ?? "", FROM: from, TO: to },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done() : fail(new Error(`pg_dump | psql exited with ${code}: ${stderr.trim()}`))));
  });
}

async function splitOnce(sourceUrl: string): Promise<{ copyMs: number; copyAndVerifyMs: number; verified: boolean }> {
  const targets = await createTargets("bench");
  try {
    const started = performance.now();
    const result = await runSplit({
      from: sourceUrl,
      sourceSchema: "public",
      targets: services.map((service) => ({ service, variable: `${service.toUpperCase()}_DATABASE_URL`, url: targets.databases[service].url })),
      mode: "copy",
      batch: 5000,
      out: () => {},
    });
    return { copyMs: result.copyMs, copyAndVerifyMs: performance.now() - started, verified: result.ok };
  } finally {
    await targets.drop();
  }
}

async function dumpOnce(sourceUrl: string, tables: string[]): Promise<{ ms: number; rowsLoaded: number }> {
  const baseline = await createServerDatabase("bench_dump");
  try {
    await query(baseline.url, readFileSync(schemaFile, "utf8"));
    const started = performance.now();
    await pipe(sourceUrl, baseline.url);
    const ms = performance.now() - started;
    let rowsLoaded = 0;
    for (const table of tables) rowsLoaded += (await query<{ n: number }>(baseline.url, `select count(*)::int as n from public.${table}`))[0]?.n ?? 0;
    return { ms, rowsLoaded };
  } finally {
    await baseline.drop();
  }
}

export async function benchSplit(options: { users?: number; rounds?: number } = {}): Promise<SplitBenchResult> {
  if (!testServerUrl) throw new Error("bench/split.ts needs a PostgreSQL server: set TEST_DATABASE_URL (pg_dump and psql must be on PATH)");
  const users = options.users ?? 17_000;
  const roundCount = Math.max(1, options.rounds ?? 3);
  const source = await createServerDatabase("bench_source");
  try {
    const generated = await generatePoc2(source.url, "public", { users, seed: 42, bcryptCost: 4 });
    const tables = Object.keys(generated.counts);
    const rounds: SplitBenchRound[] = [];
    let rowsLoaded = 0;
    for (let i = 0; i < roundCount; i++) {
      const splitFirst = i % 2 === 0;
      let split: Awaited<ReturnType<typeof splitOnce>> | undefined;
      let dump: Awaited<ReturnType<typeof dumpOnce>> | undefined;
      for (const step of splitFirst ? ["split", "dump"] : ["dump", "split"]) {
        if (step === "split") split = await splitOnce(source.url);
        else dump = await dumpOnce(source.url, tables);
      }
      if (!split || !dump) throw new Error("a round ended without both measurements");
      rowsLoaded = dump.rowsLoaded;
      rounds.push({ splitFirst, copyMs: split.copyMs, copyAndVerifyMs: split.copyAndVerifyMs, verified: split.verified, dumpMs: dump.ms });
    }
    const perSecond = (ms: number) => Math.round(generated.total / (ms / 1000));
    const copyMs = median(rounds.map((r) => r.copyMs));
    const copyAndVerifyMs = median(rounds.map((r) => r.copyAndVerifyMs));
    const dumpMs = median(rounds.map((r) => r.dumpMs));
    const ratio = (pick: (r: SplitBenchRound) => number) => Math.round(median(rounds.map((r) => r.dumpMs / pick(r))) * 100) / 100;
    return {
      rows: generated.total,
      users,
      rounds: rounds.map((r) => ({ ...r, copyMs: Math.round(r.copyMs), copyAndVerifyMs: Math.round(r.copyAndVerifyMs), dumpMs: Math.round(r.dumpMs) })),
      split: {
        copyMs: Math.round(copyMs),
        copyRowsPerSec: perSecond(copyMs),
        copyAndVerifyMs: Math.round(copyAndVerifyMs),
        copyAndVerifyRowsPerSec: perSecond(copyAndVerifyMs),
        verified: rounds.every((r) => r.verified),
      },
      pgDumpPsql: { ms: Math.round(dumpMs), rowsPerSec: perSecond(dumpMs), rowsLoaded },
      ratios: { copy: ratio((r) => r.copyMs), copyAndVerify: ratio((r) => r.copyAndVerifyMs) },
    };
  } finally {
    await source.drop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  benchSplit({ users: Number(process.env.BENCH_SPLIT_USERS ?? 17_000), rounds: Number(process.env.BENCH_SPLIT_ROUNDS ?? 3) })
    .then((r) => {
      const write = (text: string) => process.stdout.write(`${text}\n`);
      const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      const rate = (ms: number) => String(Math.round(r.rows / (ms / 1000)));
      write(`\nSplit of a generated POC-2 database: ${r.rows} rows (${r.users} users), node ${process.version}, ${r.rounds.length} rounds interleaved\n`);
      write(`${"round".padEnd(24)} ${"copy".padStart(8)} ${"copy+verify".padStart(12)} ${"pg_dump|psql".padStart(13)}`);
      for (const [i, round] of r.rounds.entries()) {
        write(
          `${`${i + 1} (${round.splitFirst ? "split first" : "dump first"})`.padEnd(24)} ${seconds(round.copyMs).padStart(8)} ${seconds(round.copyAndVerifyMs).padStart(12)} ${seconds(round.dumpMs).padStart(13)}`,
        );
      }
      write("\nmedians");
      const line = (label: string, ms: number, ratio?: number) =>
        write(
          `${label.padEnd(44)} ${seconds(ms).padStart(8)} ${rate(ms).padStart(9)} rows/s${ratio === undefined ? "" : `  ${ratio.toFixed(2)}× pg_dump|psql`}`,
        );
      line("db:split, copy alone", r.split.copyMs, r.ratios.copy);
      line(`db:split, copy + verify (${r.split.verified ? "verified" : "NOT verified"})`, r.split.copyAndVerifyMs, r.ratios.copyAndVerify);
      line(`pg_dump --data-only | psql (${r.pgDumpPsql.rowsLoaded} rows)`, r.pgDumpPsql.ms);
      write("(a ratio is the median of the rounds' split rate over dump rate; above 1 the split is faster)\n");
    })
    .catch((error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exit(1);
    });
}
