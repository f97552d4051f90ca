import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseArguments, UsageError } from "./args";
import { type Generated, generatePoc2 } from "./generate";
import { type Service, SPLIT_CORRELATION_ID, services, tableMaps } from "./tables";
import { createServerDatabase, createTargets, query, runSplitCli, type ServerDatabase, startSplit, type Targets, testServerUrl } from "./testing";

const sourceTables = tableMaps.map((m) => m.source);

/** Every row of the source, hashed: what "the source was never written" is checked against. */
async function sourceFingerprint(url: string): Promise<string> {
  const parts: string[] = [];
  for (const table of sourceTables) {
    const [row] = await query<{ h: string }>(
      url,
      `select count(*) || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as h from public.${table} t`,
    );
    parts.push(`${table}=${row?.h}`);
  }
  return parts.join(" ");
}

async function targetCounts(targets: Targets): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const map of tableMaps) {
    const [row] = await query<{ n: number }>(targets.databases[map.service].url, `select count(*)::int as n from ${map.service}.${map.target}`);
    counts[map.source] = row?.n ?? -1;
  }
  return counts;
}

/** Every row of every table in the services' schemas (bookkeeping included), counted. */
async function everyRow(targets: Targets): Promise<number> {
  let total = 0;
  for (const service of services) {
    const url = targets.databases[service].url;
    const tables = await query<{ t: string }>(
      url,
      "select format('%I.%I', table_schema, table_name) as t from information_schema.tables where table_schema in ($1, $2) and table_type = 'BASE TABLE'",
      [service, `${service}_migrations`],
    );
    for (const { t } of tables) total += (await query<{ n: number }>(url, `select count(*)::int as n from ${t}`))[0]?.n ?? 0;
  }
  return total;
}

/** "<table> <n> read: <copied> copied, …" lines of the copy phase. */
function copiedPerTable(stdout: string): Record<string, number> {
  const copied: Record<string, number> = {};
  for (const match of stdout.matchAll(/^ {2}(\S+)\s+\d+ read: (\d+) copied/gm)) copied[match[1] as string] = Number(match[2]);
  return copied;
}

const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);

describe.skipIf(!testServerUrl)("npm run db:split on PostgreSQL (skipped: set TEST_DATABASE_URL to run it)", () => {
  let source: ServerDatabase;
  let generated: Generated;
  let targets: Targets;
  let fingerprint: string;
  let dirtySource: ServerDatabase;
  let dirty: Generated;
  /** Fresh targets the dry run must leave empty; the dirty source is then split into them. */
  let untouched: Targets;
  const cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    source = await createServerDatabase("source");
    cleanup.push(() => source.drop());
    generated = await generatePoc2(source.url, "public", { users: 9000, seed: 7, bcryptCost: 4 });
    fingerprint = await sourceFingerprint(source.url);
    targets = await createTargets("main");
    cleanup.push(() => targets.drop());
    dirtySource = await createServerDatabase("dirty");
    cleanup.push(() => dirtySource.drop());
    dirty = await generatePoc2(dirtySource.url, "public", { users: 300, seed: 11, dirty: true, bcryptCost: 4 });
  }, 120_000);

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  }, 60_000);

  test("splits a POC-2 database of more than 100k rows across every table, then verifies it", async () => {
    expect(generated.total).toBeGreaterThanOrEqual(100_000);
    for (const table of sourceTables) expect(generated.counts[table], table).toBeGreaterThan(0);

    const run = await runSplitCli(["--from", source.url], targets.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("split verified");
    for (const map of tableMaps) expect(run.stdout).toMatch(new RegExp(`^${map.service}\\.${map.target} .* ok$`, "m"));
    expect(await targetCounts(targets)).toEqual(generated.counts);
    expect(sum(copiedPerTable(run.stdout))).toBe(generated.total);
    // The URLs' passwords (none here) and the URLs themselves stay out of the output: host, port and name only.
    expect(run.stdout).not.toContain("postgres://");
  }, 120_000);

  test("values arrive as they were: ids, UTC instants, cents, JSON, enums, text with tabs and line breaks", async () => {
    const auth = targets.databases.auth.url;
    const sourceUsers = await query<Record<string, string>>(
      source.url,
      'select id, email, password_hash, name, role::text as role, email_verified::text as v, to_char(created_at, \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\') as created from public.users',
    );
    const targetUsers = await query<Record<string, string>>(
      auth,
      'select id::text, email, password_hash, name, role, email_verified::text as v, to_char(created_at, \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\') as created from auth.users',
    );
    const byId = (rows: Record<string, string>[]) => new Map(rows.map((r) => [r.id, JSON.stringify(r)]));
    expect(byId(targetUsers)).toEqual(byId(sourceUsers));
    // A timestamp(3) of the source is that wall-clock time in UTC: the same instant in JavaScript.
    const [sample] = await query<{ created_at: Date }>(auth, "select created_at from auth.users where id = $1", [generated.sampleUser.id]);
    const [raw] = await query<{ t: string }>(source.url, "select to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.MS') as t from public.users where id = $1", [
      generated.sampleUser.id,
    ]);
    expect(sample?.created_at.toISOString()).toBe(`${raw?.t.replace(" ", "T")}Z`);

    const money = (url: string, table: string) =>
      query<{ id: string; amount: string; currency: string; status: string; type: string; metadata: unknown }>(
        url,
        `select id::text, amount::text, currency, status::text, type::text, metadata from ${table}`,
      );
    const sourcePayments = new Map((await money(source.url, "public.payments")).map((p) => [p.id, p]));
    const targetPayments = await money(targets.databases.payments.url, "payments.payments");
    expect(targetPayments).toHaveLength(sourcePayments.size);
    for (const p of targetPayments) expect(p).toEqual(sourcePayments.get(p.id));

    // Raw refresh tokens are stored as auth stores its own: the SHA-256 of the token.
    const [token] = await query<{ id: string; token: string }>(source.url, "select id, token from public.refresh_tokens limit 1");
    const [stored] = await query<{ token_hash: string; family_id: string }>(auth, "select token_hash, family_id::text from auth.refresh_tokens where id = $1", [
      token?.id,
    ]);
    expect(stored).toEqual({
      token_hash: createHash("sha256")
        .update(token?.token as string)
        .digest("hex"),
      family_id: token?.id,
    });
    const rawTokens = await query(auth, "select 1 from auth.refresh_tokens where token_hash in (select $1::text)", [token?.token]);
    expect(rawTokens).toHaveLength(0);

    const bios = await query<{ id: string; bio: string }>(source.url, "select id, bio from public.user_profiles where bio like '%' || chr(9) || '%' limit 1");
    expect(bios).toHaveLength(1);
    const [bio] = await query<{ bio: string }>(targets.databases.profile.url, "select bio from profile.user_profiles where id = $1", [bios[0]?.id]);
    expect(bio?.bio).toBe(bios[0]?.bio);

    // Completed recurring payments close their series; the others can still continue theirs.
    const series = await query<{ status: string; closed: boolean | null }>(
      targets.databases.payments.url,
      "select distinct status, next_payment_id = id as closed from payments.payments where type = 'recurring' order by 1",
    );
    expect(series.length).toBeGreaterThan(1);
    for (const s of series) expect(s.closed, s.status).toBe(s.status === "completed" ? true : null);

    // Each payment's history is listed (by seq) in the order it happened.
    const disordered = await query(
      targets.databases.payments.url,
      `select payment_id from (select payment_id, created_at, lag(created_at) over (partition by payment_id order by seq) as before from payments.payment_transactions) h
       where created_at < before limit 1`,
    );
    expect(disordered).toEqual([]);

    const [audit] = await query<{ id: string; details: unknown }>(source.url, "select id, details from public.audit_logs limit 1");
    const [copiedAudit] = await query<{ details: unknown; correlation_id: string }>(
      targets.databases.admin.url,
      "select details, correlation_id from admin.audit_logs where id = $1",
      [audit?.id],
    );
    expect(copiedAudit).toEqual({ details: audit?.details, correlation_id: SPLIT_CORRELATION_ID });
  }, 60_000);

  test("a second run copies nothing and ends verified", async () => {
    const run = await runSplitCli(["--from", source.url, "--batch", "4000"], targets.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const copied = copiedPerTable(run.stdout);
    expect(Object.keys(copied)).toHaveLength(tableMaps.length);
    expect(sum(copied)).toBe(0);
    expect(run.stdout).toContain("split verified");
    expect(await targetCounts(targets)).toEqual(generated.counts);
  }, 120_000);

  test("--verify-only finds a changed target row and names it; put back, it verifies again", async () => {
    const payments = targets.databases.payments.url;
    const [victim] = await query<{ id: string }>(payments, "select id::text from payments.payments order by id offset 100 limit 1");
    await query(payments, "update payments.payments set amount = amount + 0.01 where id = $1", [victim?.id]);
    const [gone] = await query<{ id: string }>(targets.databases.auth.url, "select id::text from auth.refresh_tokens order by id offset 7 limit 1");
    const [kept] = await query<Record<string, unknown>>(targets.databases.auth.url, "select * from auth.refresh_tokens where id = $1", [gone?.id]);
    await query(targets.databases.auth.url, "delete from auth.refresh_tokens where id = $1", [gone?.id]);

    const tampered = await runSplitCli(["--from", source.url, "--verify-only"], targets.env);
    expect(tampered.code, tampered.stdout + tampered.stderr).toBe(1);
    expect(tampered.stdout).toContain(`payments.payments: 1 row different from the source: ${victim?.id}`);
    expect(tampered.stdout).toContain(`auth.refresh_tokens: 1 row of the source not in the target: ${gone?.id}`);
    expect(tampered.stdout).toMatch(/^payments\.payments .* 1 differ$/m);
    expect(tampered.stdout).toContain("split FAILED");

    await query(payments, "update payments.payments set amount = amount - 0.01 where id = $1", [victim?.id]);
    await query(targets.databases.auth.url, "insert into auth.refresh_tokens select * from json_populate_record(null::auth.refresh_tokens, $1::json)", [
      JSON.stringify(kept),
    ]);
    const repaired = await runSplitCli(["--from", source.url, "--verify-only"], targets.env);
    expect(repaired.code, repaired.stdout).toBe(0);
    expect(repaired.stdout).not.toMatch(/^\s+\S+ read:/m);
  }, 120_000);

  test("--dry-run reports what it would copy and writes nothing", async () => {
    untouched = await createTargets("dry");
    cleanup.push(() => untouched.drop());
    const fresh = untouched;
    const before = await everyRow(fresh);
    const run = await runSplitCli(["--from", dirtySource.url, "--dry-run"], fresh.env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("nothing was written");
    expect(run.stdout).toContain(`auth.users: ${dirty.counts.users} rows of the source not in the target (to copy)`);
    expect(await everyRow(fresh)).toBe(before);
  }, 120_000);

  test("killed mid-copy (kill -9), a second run copies only what is missing and ends verified", async () => {
    const fresh = await createTargets("resume");
    cleanup.push(() => fresh.drop());
    const started = startSplit(["--from", source.url, "--batch", "2000"], fresh.env);
    // Killed once payments have started arriving: auth and profile are done, payments are not.
    let arrived = 0;
    while (arrived === 0) {
      expect(started.child.exitCode, "the split ended before it could be interrupted").toBeNull();
      await new Promise((r) => setTimeout(r, 20));
      const [row] = await query<{ n: number }>(fresh.databases.payments.url, "select count(*)::int as n from payments.payments");
      arrived = row?.n ?? 0;
    }
    started.child.kill("SIGKILL");
    const killed = await started.done;
    expect(killed.code).toBeNull();
    const partial = await targetCounts(fresh);
    expect(sum(partial)).toBeGreaterThan(0);
    expect(sum(partial)).toBeLessThan(generated.total);

    const resumed = await runSplitCli(["--from", source.url, "--batch", "2000"], fresh.env);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain("split verified");
    const copied = copiedPerTable(resumed.stdout);
    for (const map of tableMaps) {
      expect(copied[`${map.service}.${map.target}`], map.source).toBe((generated.counts[map.source] as number) - (partial[map.source] as number));
    }
    expect(await targetCounts(fresh)).toEqual(generated.counts);
  }, 120_000);

  test("a dirty source fails the run and names every row a target refused; the clean rows are copied", async () => {
    const fresh = untouched;
    const run = await runSplitCli(["--from", dirtySource.url, "--batch", "100"], fresh.env);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toContain("split FAILED");
    const rejectedLines = run.stdout.split("\n").filter((l) => /^ {2}.+: (duplicate|refers to|no value|fails check)/.test(l));
    const expected = Object.values(dirty.dirty).flat();
    expect(expected.length).toBeGreaterThanOrEqual(9);
    for (const { key, why } of expected) {
      const line = rejectedLines.find((l) => l.startsWith(`  ${key}: `));
      expect(line, `${key} (${why}) in:\n${run.stdout}`).toBeDefined();
      expect(line).toContain(why);
    }
    expect(rejectedLines).toHaveLength(expected.length);
    const counts = await targetCounts(fresh);
    for (const table of sourceTables) {
      expect(counts[table], table).toBe((dirty.counts[table] as number) - (dirty.dirty[table]?.length ?? 0));
    }
    // Small batches written side by side: each payment's history still reads oldest first by seq.
    const disordered = await query(
      fresh.databases.payments.url,
      `select payment_id from (select payment_id, created_at, lag(created_at) over (partition by payment_id order by seq) as before from payments.payment_transactions) h
       where created_at < before limit 1`,
    );
    expect(disordered).toEqual([]);
    // Nothing rejected is skipped silently on a second run either.
    const again = await runSplitCli(["--from", dirtySource.url], fresh.env);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/^auth\.users .* 1 missing$/m);
  }, 120_000);

  test("a target that is not migrated stops the run before anything is copied, naming the service", async () => {
    const empty = await createServerDatabase("unmigrated");
    cleanup.push(() => empty.drop());
    const env = { ...targets.env, PAYMENTS_DATABASE_URL: empty.url };
    const run = await runSplitCli(["--from", source.url], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("payments (PAYMENTS_DATABASE_URL) is not migrated");
    expect(run.stdout).not.toContain("auth (AUTH_DATABASE_URL) is not migrated");
    expect(run.stdout).toContain("split stopped before copying anything");
  }, 60_000);

  test("the source was never written", async () => {
    expect(await sourceFingerprint(source.url)).toBe(fingerprint);
  }, 60_000);
});

describe("npm run db:split, used wrongly", () => {
  test.each([
    [[], "db:split needs --from <shared database URL>"],
    [["--from"], "--from needs a value"],
    [["--from", "mysql://u:secret@h/db"], "--from must be a PostgreSQL URL: postgres://<user>@<host>:<port>/<database>"],
    [["--from", "pglite://memory"], "--from must be a PostgreSQL URL: postgres://<user>@<host>:<port>/<database>"],
    [["--from", "postgres://h/db", "--batch", "0"], "--batch must be a whole number from 1 to 100000"],
    [["--from", "postgres://h/db", "--batch", "5e3"], "--batch must be a whole number from 1 to 100000"],
    [["--from", "postgres://h/db", "--source-schema", "x; drop"], "--source-schema must be a schema name (letters, digits, underscores)"],
    [["--from", "postgres://h/db", "--dry-run", "--verify-only"], "--dry-run and --verify-only exclude each other"],
    [["--from", "postgres://h/db", "--fast"], "db:split has no option --fast"],
    [["--from", "postgres://h/db", "now"], 'db:split takes no argument "now"'],
  ])("%j is refused: %s", (args, message) => {
    expect(() => parseArguments(args)).toThrow(new UsageError(message));
  });

  test("the defaults: schema public, batches of 5000, copy", () => {
    expect(parseArguments(["--from", "postgres://h/db"])).toEqual({ from: "postgres://h/db", sourceSchema: "public", batch: 5000, mode: "copy" });
    expect(parseArguments(["--verify-only", "--from", "postgres://h/db", "--batch", "200", "--source-schema", "poc2"])).toMatchObject({
      sourceSchema: "poc2",
      batch: 200,
      mode: "verify-only",
    });
  });

  test("the command prints one line and the usage, and exits 2", async () => {
    const run = await runSplitCli(["--from", "postgres://h/db", "--fast"], {});
    expect(run.code).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe("db:split has no option --fast");
    expect(run.stderr).toContain("usage: npm run db:split");
    expect(run.stdout).toBe("");
  });

  test("a missing or PGlite target names the variable; a refused source names the host, never the password", async () => {
    const missing = await runSplitCli(["--from", "postgres://u:secret@127.0.0.1:1/x"], { PROFILE_DATABASE_URL: "pglite://memory" });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("split: AUTH_DATABASE_URL (or DATABASE_URL) is required");
    expect(missing.stderr).toContain("split: PROFILE_DATABASE_URL: the split writes to a PostgreSQL server");

    const env = Object.fromEntries(services.map((s: Service) => [`${s.toUpperCase()}_DATABASE_URL`, "postgres://u:secret@127.0.0.1:1/x"]));
    const refused = await runSplitCli(["--from", "postgres://u:secret@127.0.0.1:1/x"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe("--from: cannot connect to 127.0.0.1:1 (connection refused); is the server running?");
    expect(refused.stdout + refused.stderr).not.toContain("secret");
  });
});
