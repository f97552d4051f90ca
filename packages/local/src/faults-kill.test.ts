/**
 * The process dies without warning: `npm run dev` is killed with SIGKILL while mixed traffic
 * (register, login, pay, profile updates) is in flight, and started again on the same data. What
 * was acknowledged is there exactly once, nothing is applied twice, clients that retry what got
 * no answer (same idempotency key, same email) end with one effect, and every event committed
 * before the kill is delivered after the restart (pending deliveries from disk, unpublished
 * outbox rows by the sweeper). On PGlite (a DATA_DIR) and, with TEST_DATABASE_URL, PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { describe, expect, test, vi } from "vitest";
import { type Answer, call, type DevProcess, openServiceDatabases, pendingDeliveries, rows, serviceNames, startDev } from "./faults.testing";

const SLOW = 600_000;
const password = "correct horse battery";

interface User {
  email: string;
  token: string;
  id: string;
}

type Sent =
  | { op: "register"; email: string; answer?: Answer }
  | { op: "login"; email: string; answer?: Answer }
  | { op: "pay"; key: string; sender: User; body: { recipientEmail: string; amount: string }; answer?: Answer }
  | { op: "patch"; user: User; seq: number; answer?: Answer };

const acknowledged = (sent: Sent) =>
  sent.answer !== undefined &&
  ((sent.op === "register" && sent.answer.status === 201) ||
    (sent.op === "pay" && sent.answer.status === 201) ||
    (sent.op === "patch" && sent.answer.status === 200));

async function register(base: string, email: string): Promise<User> {
  const answer = await call(base, "POST", "/auth/register", { body: { email, password, name: "Fault" } });
  expect(answer?.status, JSON.stringify(answer?.body)).toBe(201);
  return { email, token: answer!.body.accessToken, id: answer!.body.user.id };
}

/** Waits until the local bus has nothing pending: no file on disk, no delivery pending or retrying. */
async function settled(dev: DevProcess, stageDir: string): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(pendingDeliveries(stageDir)).toEqual([]);
      const recent = await call(dev.base, "GET", "/_local/events/recent");
      const busy = (recent?.body.items ?? []).flatMap((event: { deliveries: { status: string }[] }) =>
        event.deliveries.filter((d) => d.status === "pending" || d.status === "retrying"),
      );
      expect(busy).toEqual([]);
      expect(recent?.body.deadLetterCount).toBe(0);
    },
    { timeout: 120_000, interval: 100 },
  );
}

async function killUnderTraffic(label: string, env: Record<string, string>, where: (stageDir: string) => { stageDir: string } | { url: string }) {
  const dataDir = mkdtempSync(join(tmpdir(), `enclave-kill-${label}-`));
  const stageDir = join(dataDir, "local");
  const fullEnv = { DATA_DIR: dataDir, BUS_RETRY_BASE_MS: "50", ...env };
  const run = randomUUID().slice(0, 8);
  const sent: Sent[] = [];
  let dev: DevProcess | undefined = await startDev(fullEnv);
  try {
    const base = dev.base;
    const users: User[] = [];
    for (let i = 0; i < 4; i++) users.push(await register(base, `base-${i}-${run}@example.com`));

    // Mixed traffic from four clients until the process dies under them.
    let killed = false;
    let counter = 0;
    const ops = ["register", "pay", "patch", "login", "pay", "patch"] as const;
    const client = async (worker: number) => {
      for (let step = 0; !killed; step++) {
        const n = counter++;
        const op = ops[(worker + step) % ops.length]!;
        const sender = users[n % users.length]!;
        if (op === "register") {
          const entry: Sent = { op, email: `mixed-${n}-${run}@example.com` };
          sent.push(entry);
          entry.answer = await call(base, "POST", "/auth/register", { body: { email: entry.email, password, name: `Mixed ${n}` } });
        } else if (op === "login") {
          const entry: Sent = { op, email: sender.email };
          sent.push(entry);
          entry.answer = await call(base, "POST", "/auth/login", { body: { email: sender.email, password } });
        } else if (op === "pay") {
          const recipient = users[(n + 1) % users.length]!;
          const entry: Sent = {
            op,
            key: randomUUID(),
            sender,
            body: { recipientEmail: recipient.email, amount: `${1 + (n % 9)}.${String(n % 100).padStart(2, "0")}` },
          };
          sent.push(entry);
          entry.answer = await call(base, "POST", "/payments", { body: entry.body, token: sender.token, headers: { "idempotency-key": entry.key } });
        } else {
          const entry: Sent = { op: "patch", user: sender, seq: n };
          sent.push(entry);
          entry.answer = await call(base, "PATCH", "/profiles/me", { body: { bio: `update ${n}` }, token: sender.token });
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await vi.waitFor(() => expect(sent.filter(acknowledged).length).toBeGreaterThanOrEqual(16), { timeout: 300_000, interval: 10 });
    const inFlight = sent.filter((s) => s.answer === undefined).length;
    killed = true;
    dev.child.kill("SIGKILL");
    expect(await dev.exited).toBeNull();
    dev = undefined;
    await Promise.all(clients);
    // Every answer is a success or a refusal the contract allows; none is a 5xx.
    for (const s of sent) if (s.answer) expect([s.op, s.answer.status]).toEqual([s.op, s.answer.status < 500 ? s.answer.status : "no 5xx"]);
    for (const s of sent) if (s.op === "login" && s.answer) expect(s.answer.status).toBe(200);

    // Between the runs: what the kill left, and time passing (the sweeper leaves rows younger
    // than its grace period to the relay of the request that wrote them, which is dead).
    const between = await openServiceDatabases(where(stageDir));
    const unpublished: string[] = [];
    try {
      for (const service of serviceNames) {
        const database = between.of(service);
        unpublished.push(...(await rows<{ id: string }>(database, `select id from "${service}"."outbox" where published_at is null`)).map((r) => r.id));
        await rows(database, `update "${service}"."outbox" set created_at = created_at - interval '1 minute' where published_at is null`);
      }
    } finally {
      await between.close();
    }
    const pendingAtKill = pendingDeliveries(stageDir).length;

    dev = await startDev(fullEnv);
    const again = dev.base;
    // The sweeper's first run publishes what the kill left unpublished.
    await vi.waitFor(
      async () => {
        const recent = await call(again, "GET", "/_local/events/recent");
        const seen = new Set((recent?.body.items ?? []).map((e: { eventId: string }) => e.eventId));
        expect(unpublished.filter((id) => !seen.has(id))).toEqual([]);
      },
      { timeout: 120_000, interval: 100 },
    );
    await settled(dev, stageDir);

    // Clients retry what got no answer, and repeat what was acknowledged: one effect each.
    const firstIds = new Map<string, string>();
    for (const s of sent) if (s.op === "pay" && acknowledged(s)) firstIds.set(s.key, s.answer!.body.payment.id);
    for (const s of sent) {
      if (s.op === "pay") {
        const replay = await call(again, "POST", "/payments", { body: s.body, token: s.sender.token, headers: { "idempotency-key": s.key } });
        expect([s.key, replay?.status]).toEqual([s.key, 201]);
        if (firstIds.has(s.key)) expect(replay?.body.payment.id).toBe(firstIds.get(s.key));
        else firstIds.set(s.key, replay!.body.payment.id);
      } else if (s.op === "register" && !acknowledged(s)) {
        const retried = await call(again, "POST", "/auth/register", { body: { email: s.email, password, name: "Retried" } });
        expect([201, 409]).toContain(retried?.status);
      }
    }
    for (const s of sent)
      if (s.op === "register" && acknowledged(s)) expect((await call(again, "POST", "/auth/login", { body: { email: s.email, password } }))?.status).toBe(200);
    await settled(dev, stageDir);
    dev.child.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
    dev = undefined;
    expect(pendingDeliveries(stageDir)).toEqual([]);

    // Count everything.
    const after = await openServiceDatabases(where(stageDir));
    try {
      const [auth, profile, payments, admin] = serviceNames.map((s) => after.of(s));
      const emails = (await rows<{ email: string }>(auth!, `select lower(email) as email from auth.users`)).map((r) => r.email);
      const registers = sent.filter((s): s is Extract<Sent, { op: "register" }> => s.op === "register");
      for (const s of registers) expect([s.email, emails.filter((e) => e === s.email).length]).toEqual([s.email, 1]);
      expect(new Set(emails).size).toBe(emails.length);
      const userIds = (await rows<{ id: string }>(auth!, `select id from auth.users`)).map((r) => r.id).sort();
      const profileUsers = (await rows<{ user_id: string }>(profile!, `select user_id from profile.user_profiles`)).map((r) => r.user_id).sort();
      expect(profileUsers).toEqual(userIds);

      // Profile updates: each user's bio is its last acknowledged update or a later one.
      const bios = new Map(
        (await rows<{ user_id: string; bio: string | null }>(profile!, `select user_id, bio from profile.user_profiles`)).map((r) => [r.user_id, r.bio]),
      );
      for (const user of users) {
        const acked = sent.filter((s): s is Extract<Sent, { op: "patch" }> => s.op === "patch" && s.user === user && acknowledged(s)).map((s) => s.seq);
        if (acked.length === 0) continue;
        const seq = Number(/^update (\d+)$/.exec(bios.get(user.id) ?? "")?.[1]);
        expect(seq).toBeGreaterThanOrEqual(Math.max(...acked));
      }

      // Payments: one per idempotency key, each the one its client was given.
      // (The development seed's own payments are not this traffic's.)
      const senders = users.map((u) => `'${u.id}'`).join(", ");
      const paymentRows = await rows<{ id: string }>(payments!, `select id from payments.payments where sender_id in (${senders})`);
      expect(paymentRows.map((r) => r.id).sort()).toEqual([...firstIds.values()].sort());
      const keys = await rows<{ key: string; payment_id: string }>(
        payments!,
        `select key, payment_id from payments.idempotency_keys where caller_id in (${senders})`,
      );
      expect(new Map(keys.map((k) => [k.key, k.payment_id]))).toEqual(firstIds);
      // Each status change recorded once per payment.
      const repeated = await rows(payments!, `select payment_id, status from payments.payment_transactions group by 1, 2 having count(*) > 1`);
      expect(repeated).toEqual([]);

      // Every event any service committed is published and audited exactly once.
      const events: string[] = [];
      for (const service of serviceNames) {
        const outbox = await rows<{ id: string; published: boolean }>(
          after.of(service),
          `select id, published_at is not null as published from "${service}"."outbox"`,
        );
        expect(outbox.filter((r) => !r.published)).toEqual([]);
        events.push(...outbox.map((r) => r.id));
      }
      const audited = (await rows<{ id: string }>(admin!, `select id from admin.audit_logs`)).map((r) => r.id);
      expect(audited.sort()).toEqual(events.sort());

      const ackedCount = sent.filter(acknowledged).length;
      console.info(
        `[${label}] requests sent ${sent.length + users.length}, acknowledged writes ${ackedCount + users.length}, in flight at the kill ${inFlight}, ` +
          `no answer ${sent.filter((s) => !s.answer).length}; at the kill: ${unpublished.length} unpublished outbox rows, ${pendingAtKill} pending deliveries; ` +
          `after: users ${userIds.length}, profiles ${profileUsers.length}, payments ${paymentRows.length}, audit rows ${audited.length} = events ${events.length}`,
      );
    } finally {
      await after.close();
    }
  } finally {
    dev?.child.kill("SIGKILL");
    await dev?.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe("SIGKILL under mixed traffic, then a restart on the same data", () => {
  test(
    "PGlite (DATA_DIR): acknowledged writes exactly once, committed events delivered after the restart",
    async () => {
      await killUnderTraffic("pglite", {}, (stageDir) => ({ stageDir }));
    },
    SLOW,
  );

  test.skipIf(!testServerUrl)(
    "PostgreSQL: acknowledged writes exactly once, committed events delivered after the restart",
    async () => {
      const database = await createTestDatabase([]);
      try {
        await killUnderTraffic("postgres", { DATABASE_URL: database.url }, () => ({ url: database.url }));
      } finally {
        await database.dispose();
      }
    },
    SLOW,
  );
});
