import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalRuntime, type LocalRuntime } from "@enclave/local/runtime";
import { afterAll, describe, expect, test } from "vitest";
import { generatedPassword, generatePoc2 } from "./generate";
import { createServerDatabase, createTargets, onServer, query, runSplitCli, type ServerDatabase, type Targets, testServerUrl } from "./testing";

/** Every row of the source's tables, hashed. */
async function fingerprint(url: string): Promise<string> {
  const [row] = await query<{ h: string }>(
    url,
    `select string_agg(h, ' ' order by h) as h from (
       select 'users=' || md5(string_agg(t::text, '|' order by t::text)) as h from public.users t
       union all select 'tokens=' || md5(string_agg(t::text, '|' order by t::text)) from public.refresh_tokens t
       union all select 'profiles=' || md5(string_agg(t::text, '|' order by t::text)) from public.user_profiles t
       union all select 'payments=' || md5(string_agg(t::text, '|' order by t::text)) from public.payments t
       union all select 'history=' || md5(string_agg(t::text, '|' order by t::text)) from public.payment_transactions t
       union all select 'audit=' || md5(string_agg(t::text, '|' order by t::text)) from public.audit_logs t
       union all select 'config=' || md5(string_agg(t::text, '|' order by t::text)) from public.system_config t) s`,
  );
  return row?.h ?? "";
}

const json = { "content-type": "application/json" };

/**
 * The runbook of docs/OPERATIONS.md ("Cut-over" and "Rollback"), step by step, on one server:
 * freeze the shared database, split, verify, run the services on the new databases, then go back.
 */
describe.skipIf(!testServerUrl)("cut-over to per-service databases and rollback, rehearsed (skipped: set TEST_DATABASE_URL to run it)", () => {
  let source: ServerDatabase | undefined;
  let targets: Targets | undefined;
  let runtime: LocalRuntime | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-cutover-"));

  afterAll(async () => {
    await runtime?.close();
    await targets?.drop();
    await source?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  test("read-only source, split, verify, services on the targets (legacy passwords upgraded), rollback to the untouched source", async () => {
    source = await createServerDatabase("live");
    await generatePoc2(source.url, "public", { users: 200, seed: 3, bcryptCost: 4 });
    targets = await createTargets("cutover");
    const live = source;

    // 1. Freeze: new sessions are read-only, and the sessions already open are ended.
    await onServer(`alter database "${live.name}" set default_transaction_read_only = on`);
    await onServer(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${live.name}' and pid <> pg_backend_pid()`);
    await expect(query(live.url, "insert into public.system_config (key, value, updated_at) values ('frozen', '1', now())")).rejects.toMatchObject({
      code: "25006",
    });
    const frozen = await fingerprint(live.url);

    // 2 and 3. Copy and verify.
    const split = await runSplitCli(["--from", live.url], targets.env);
    expect(split.code, split.stdout + split.stderr).toBe(0);
    expect(split.stdout).toContain("split verified");

    // 4. Flip: the services run on the per-service databases.
    runtime = await createLocalRuntime({ env: { ...targets.env, DATA_DIR: dataDir, LOCAL_CRONS: "0", SEED: "none", LOG_LEVEL: "error" } });
    const app = runtime.app;
    const [customer] = await query<{ id: string; email: string; profile: string; created: string }>(
      live.url,
      `select u.id, u.email, p.id as profile, to_char(u.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created
       from public.users u join public.user_profiles p on p.user_id = u.id
       where u.role = 'CUSTOMER' and exists (select 1 from public.payments where sender_id = u.id) order by u.email limit 1`,
    );
    const [admin] = await query<{ id: string; email: string }>(live.url, "select id, email from public.users where role = 'ADMIN' order by email limit 1");
    if (!customer || !admin) throw new Error("the generated data has no customer with a profile and payments, or no admin");
    const passwordOf = (email: string) => generatedPassword(Number(/\.(\d+)@/.exec(email)?.[1]));
    const login = async (email: string) =>
      app.request("/auth/login", { method: "POST", headers: json, body: JSON.stringify({ email, password: passwordOf(email) }) });

    const [legacy] = await query<{ password_hash: string }>(targets.databases.auth.url, "select password_hash from auth.users where id = $1", [customer.id]);
    expect(legacy?.password_hash).toMatch(/^\$2[aby]\$04\$/);
    const signedIn = await login(customer.email);
    expect(signedIn.status).toBe(200);
    const session = (await signedIn.json()) as { user: { id: string; createdAt: string }; accessToken: string };
    expect(session.user).toMatchObject({ id: customer.id, createdAt: customer.created });
    const [upgraded] = await query<{ password_hash: string }>(targets.databases.auth.url, "select password_hash from auth.users where id = $1", [customer.id]);
    expect(upgraded?.password_hash).toMatch(/^scrypt\$/);
    expect((await login(customer.email)).status).toBe(200);
    const wrong = await app.request("/auth/login", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ email: customer.email, password: "not it at all" }),
    });
    expect(wrong.status).toBe(401);

    const bearer = { authorization: `Bearer ${session.accessToken}` };
    // The profile is the copied one: no user.registered was published, and none was needed.
    const profile = (await (await app.request("/profiles/me", { headers: bearer })).json()) as { profile: { id: string } };
    expect(profile.profile.id).toBe(customer.profile);
    const sent = await query<{ id: string; amount: string }>(live.url, "select id, amount::text from public.payments where sender_id = $1", [customer.id]);
    const listed = (await (await app.request("/payments?role=sender&limit=100", { headers: bearer })).json()) as { items: { id: string; amount: string }[] };
    expect(new Map(listed.items.map((p) => [p.id, p.amount]))).toEqual(new Map(sent.map((p) => [p.id, p.amount])));

    const adminSession = (await (await login(admin.email)).json()) as { accessToken: string };
    const history = await query<{ id: string }>(live.url, "select id from public.audit_logs where user_id = $1", [customer.id]);
    const audit = (await (
      await app.request(`/admin/audit-logs?userId=${customer.id}&limit=100`, { headers: { authorization: `Bearer ${adminSession.accessToken}` } })
    ).json()) as { items: { id: string }[] };
    expect(audit.items.map((a) => a.id).sort()).toEqual(history.map((h) => h.id).sort());

    // A write after the flip, which the shared database will not have.
    const registered = await app.request("/auth/register", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ email: "after.flip@example.com", password: "correct horse", name: "After" }),
    });
    expect(registered.status).toBe(201);
    const newcomer = ((await registered.json()) as { user: { id: string } }).user.id;
    // Payments the shared database left pending are taken over; no recurring series is replayed.
    const due = (await runtime.runCron("payments", "due")) as { claimed: number };
    expect(due.claimed).toBeGreaterThan(0);
    const closed = await query<{ id: string }>(live.url, "select id from public.payments where type = 'recurring' and status = 'completed'");
    expect(closed.length).toBeGreaterThan(0);
    const replayed = await query(targets.databases.payments.url, "select id from payments.payments where occurrence > 1 and series_id = any($1::uuid[])", [
      closed.map((p) => p.id),
    ]);
    expect(replayed).toEqual([]);
    await runtime.close();
    runtime = undefined;

    // Rollback: the URLs go back to the shared database, which is made writable again, exactly as frozen.
    await onServer(`alter database "${live.name}" reset default_transaction_read_only`);
    expect(await fingerprint(live.url)).toBe(frozen);
    await query(live.url, "begin; update public.system_config set description = description where false; rollback");
    const [stillLegacy] = await query<{ password_hash: string }>(live.url, "select password_hash from public.users where id = $1", [customer.id]);
    expect(stillLegacy?.password_hash).toMatch(/^\$2[aby]\$/);

    // What happened on the targets after the flip, for whoever reconciles it.
    const since = await runSplitCli(["--from", live.url, "--verify-only"], targets.env);
    expect(since.code).toBe(1);
    // Both users who signed in have a new (scrypt) hash; one user registered.
    expect(since.stdout).toContain(`auth.users: 2 rows different from the source: ${[customer.id, admin.id].sort().join(", ")}`);
    expect(since.stdout).toContain(`auth.users: 1 row only in the target (not from the source): ${newcomer}`);
    // Settings the deploy's essential seed added are the targets' own.
    expect(since.stdout).toMatch(/^admin\.system_config: \d+ rows? only in the target/m);
  }, 120_000);
});
