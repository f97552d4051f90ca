/**
 * Load: mixed traffic (sign-ups, sign-ins, payments with idempotent retries, cancels, profile
 * reads and edits, payment reads, the administrator's reads) from a fixed number of concurrent
 * clients over HTTP against the local runtime as `npm run dev` runs it, for LOAD_SECONDS (20 by
 * default, 120 for the full run). Then, once the bus is idle, every request must have had the
 * answer it asked for, and the rows must add up: one profile and one `user.registered` per new
 * user, one payment per acknowledged create however often it was retried, every instant payment
 * settled once with its history, every outbox row published, every event audited exactly once
 * and taken once by each subscriber that keeps an inbox. The request rate is printed, never
 * asserted. Runs on PGlite, or on a fresh PostgreSQL database when TEST_DATABASE_URL is set.
 */
import { randomUUID } from "node:crypto";
import { adminOutbox, auditLogsTable } from "@enclave/admin/admin.sql";
import { authContextFromConfig, authService } from "@enclave/auth";
import { authOutbox, usersTable } from "@enclave/auth/auth.sql";
import { readAuthConfig } from "@enclave/auth/config";
import type { Db } from "@enclave/core";
import { paymentsInbox, paymentsOutbox, paymentsTable, paymentTransactionsTable } from "@enclave/payments/payments.sql";
import { profileInbox, profileOutbox, userProfilesTable } from "@enclave/profile/profile.sql";
import { count, isNull } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { call as callService } from "./faults.testing";
import { localService } from "./registry";
import { createLocalRuntime, type LocalRuntime } from "./runtime";
import { serveRuntime, testEnvironment } from "./runtime.testing";
import { localServices } from "./services";

/** How long traffic runs, in seconds (the full run: LOAD_SECONDS=120). */
const SECONDS = Number(process.env.LOAD_SECONDS || 20);
/** Concurrent clients, each sending its next request as soon as the last one is answered. */
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY || 8);

/** log2 of scrypt's N for sign-ups and sign-ins; the deployed 17 (LOAD_PASSWORD_COST=17) makes hashing most of the load. */
const PASSWORD_COST = Number(process.env.LOAD_PASSWORD_COST || 10);

let environment: Awaited<ReturnType<typeof testEnvironment>>;
let runtime: LocalRuntime;
let server: Awaited<ReturnType<typeof serveRuntime>>;

beforeAll(async () => {
  environment = await testEnvironment({ SEED: "development", BUS_RETRY_BASE_MS: "20" });
  const services = localServices.map((service) =>
    service.module.manifest.name === "auth"
      ? localService({
          module: authService,
          context: (local) => authContextFromConfig(readAuthConfig(local.env), { ...local.overrides, passwordCost: PASSWORD_COST }),
        })
      : service,
  );
  runtime = await createLocalRuntime({ env: environment.env, services });
  server = await serveRuntime(runtime);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await runtime?.close();
  await environment?.dispose();
});

interface User {
  id: string;
  email: string;
  password: string;
  token: string;
}
interface Created {
  id: string;
  senderId: string;
  kind: "instant" | "scheduled";
  /** The local provider declines amounts above 10000.00. */
  declined: boolean;
}

/** What the clients did and were told, to compare with the rows afterwards. */
const done = {
  requests: 0,
  byAction: new Map<string, number>(),
  errors: [] as string[],
  users: [] as User[],
  payments: new Map<string, Created>(),
  replays: 0,
  cancelled: 0,
  profileEdits: 0,
};

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

/** One request of the traffic, counted; an answer other than `expected` (or none) is recorded as an error. */
async function call(
  action: string,
  method: string,
  path: string,
  expected: number,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const answer = await callService(server.base, method, path, options);
  done.requests++;
  done.byAction.set(action, (done.byAction.get(action) ?? 0) + 1);
  if (answer?.status !== expected) {
    done.errors.push(`${action}: ${method} ${path} → ${answer ? `${answer.status} ${JSON.stringify(answer.body)?.slice(0, 200)}` : "no answer"}`);
    return undefined;
  }
  return answer;
}

let admin = "";
let run = 0;

async function register() {
  const email = `load-${randomUUID()}@example.com`;
  const password = `load-password-${run++}`;
  const answer = await call("register", "POST", "/auth/register", 201, { body: { email, password, name: "Load" } });
  if (answer) done.users.push({ id: answer.body.user.id, email, password, token: answer.body.accessToken });
}

async function pay(from: User, to: User) {
  const instant = Math.random() < 0.8;
  const cents = Math.random() < 0.05 ? 1_000_001 + Math.floor(Math.random() * 1_000_000) : 1 + Math.floor(Math.random() * 1_000_000);
  const body = {
    recipientEmail: to.email,
    amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`,
    ...(instant ? {} : { type: "scheduled", scheduledFor: new Date(Date.now() + 86_400_000).toISOString() }),
  };
  const key = randomUUID();
  const answer = await call("pay", "POST", "/payments", 201, { token: from.token, body, headers: { "idempotency-key": key } });
  if (!answer) return;
  const id = answer.body.payment.id as string;
  done.payments.set(id, { id, senderId: from.id, kind: instant ? "instant" : "scheduled", declined: cents > 1_000_000 });
  // A client that did not see the answer retries: the same payment again, never a second one.
  if (Math.random() < 0.2) {
    const replay = await call("pay-retry", "POST", "/payments", 201, { token: from.token, body, headers: { "idempotency-key": key } });
    if (replay) {
      done.replays++;
      if (replay.body.payment.id !== id || replay.headers.get("idempotent-replayed") !== "true")
        done.errors.push(`retry of ${id} answered ${replay.body.payment.id}`);
    }
  }
  if (!instant && Math.random() < 0.5) {
    if (await call("cancel", "POST", `/payments/${id}/cancel`, 200, { token: from.token })) done.cancelled++;
  }
}

/** One request (or a short exchange) of the mix, weighted roughly as a payments app is used. */
async function step() {
  const r = Math.random();
  const users = done.users;
  if (users.length < 2 || r < 0.06) return register();
  const me = pick(users);
  if (r < 0.12) {
    const answer = await call("login", "POST", "/auth/login", 200, { body: { email: me.email, password: me.password } });
    if (answer) me.token = answer.body.accessToken;
    return;
  }
  if (r < 0.4) {
    let other = pick(users);
    while (other === me) other = pick(users);
    return pay(me, other);
  }
  if (r < 0.52) {
    const answer = await call("profile", "GET", "/profiles/me", 200, { token: me.token });
    if (answer && answer.body.profile.userId !== me.id) done.errors.push(`profile of ${me.id} answered ${answer.body.profile.userId}`);
    return;
  }
  if (r < 0.57) {
    if (await call("profile-edit", "PATCH", "/profiles/me", 200, { token: me.token, body: { bio: `bio ${Date.now()}` } })) done.profileEdits++;
    return;
  }
  if (r < 0.72) {
    const answer = await call("payments", "GET", "/payments?limit=20", 200, { token: me.token });
    for (const p of answer?.body.items ?? []) if (p.senderId !== me.id && p.recipientId !== me.id) done.errors.push(`${me.id} was shown payment ${p.id}`);
    return;
  }
  if (r < 0.82) {
    const mine = [...done.payments.values()].filter((p) => p.senderId === me.id);
    const target = mine.length > 0 ? pick(mine) : undefined;
    if (target) await call("payment", "GET", `/payments/${target.id}`, 200, { token: me.token });
    else await call("payments", "GET", "/payments?limit=5", 200, { token: me.token });
    return;
  }
  const which = Math.random();
  if (which < 0.5) await call("admin-audit", "GET", "/admin/audit-logs?limit=50", 200, { token: admin });
  else if (which < 0.75) await call("admin-config", "GET", "/admin/config", 200, { token: admin });
  else await call("admin-user", "GET", `/auth/users/${me.id}`, 200, { token: admin });
}

const rows = async (db: Db, table: PgTable) => Number((await db.select({ n: count() }).from(table))[0]?.n ?? 0);
async function byType(db: Db, outbox: typeof authOutbox) {
  const result = await db.select({ type: outbox.type, n: count() }).from(outbox).groupBy(outbox.type);
  return Object.fromEntries(result.map((row) => [row.type, Number(row.n)]));
}

/** Every count the checks compare, taken before and after the traffic (the development seed has rows of its own). */
async function snapshot() {
  const db = (service: string) => (runtime.databases.get(service) as { db: Db }).db;
  const outboxes = { auth: authOutbox, profile: profileOutbox, payments: paymentsOutbox, admin: adminOutbox };
  const published: Record<string, number> = {};
  let unpublished = 0;
  for (const [service, outbox] of Object.entries(outboxes)) {
    unpublished += Number((await db(service).select({ n: count() }).from(outbox).where(isNull(outbox.publishedAt)))[0]?.n ?? 0);
    for (const [type, n] of Object.entries(await byType(db(service), outbox))) published[type] = (published[type] ?? 0) + n;
  }
  const audit = await db("admin").select({ action: auditLogsTable.action, n: count() }).from(auditLogsTable).groupBy(auditLogsTable.action);
  const payments = await db("payments").select({ id: paymentsTable.id, status: paymentsTable.status }).from(paymentsTable);
  return {
    users: await rows(db("auth"), usersTable),
    profiles: await rows(db("profile"), userProfilesTable),
    payments: new Map(payments.map((row) => [row.id, row.status])),
    transactions: await rows(db("payments"), paymentTransactionsTable),
    published,
    unpublished,
    audited: Object.fromEntries(audit.map((row) => [row.action, Number(row.n)])) as Record<string, number>,
    auditRows: await rows(db("admin"), auditLogsTable),
    profileInbox: await rows(db("profile"), profileInbox),
    paymentsInbox: await rows(db("payments"), paymentsInbox),
  };
}

test(`${SECONDS} s of mixed traffic from ${CONCURRENCY} clients: no error, no lost event, no duplicated effect`, {
  timeout: (SECONDS + 300) * 1000,
}, async () => {
  const signedIn = await call("login", "POST", "/auth/login", 200, { body: { email: "admin@enclave.dev", password: "enclave-admin-dev" } });
  admin = signedIn?.body.accessToken;
  await runtime.bus.drain();
  const before = await snapshot();

  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) await step();
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await runtime.bus.drain();
  const after = await snapshot();

  const users = done.users.length;
  const payments = [...done.payments.values()];
  const instant = payments.filter((p) => p.kind === "instant");
  const declined = instant.filter((p) => p.declined).length;
  console.log(
    `load: ${done.requests} requests in ${elapsed.toFixed(1)} s = ${(done.requests / elapsed).toFixed(1)} requests/s at concurrency ${CONCURRENCY} ` +
      `(${runtime.databases.get("auth")?.kind}, scrypt cost ${PASSWORD_COST}); ${users} users, ${payments.length} payments (${instant.length} instant, ${declined} declined), ` +
      `${done.replays} retries, ${done.cancelled} cancels, ${done.profileEdits} profile edits; ${JSON.stringify(Object.fromEntries(done.byAction))}`,
  );
  expect(done.errors.slice(0, 20)).toEqual([]);
  expect(runtime.bus.deadLetters()).toEqual([]);
  expect(users).toBeGreaterThan(1);
  expect(instant.length).toBeGreaterThan(0);

  // Users and profiles: one each per acknowledged sign-up.
  expect(after.users - before.users).toBe(users);
  expect(after.profiles - before.profiles).toBe(users);

  // Payments: one per acknowledged create (retries add none), each settled as the provider decides.
  expect(after.payments.size - before.payments.size).toBe(payments.length);
  for (const p of payments) {
    const expected = p.kind === "instant" ? (p.declined ? "failed" : "completed") : undefined;
    if (expected) expect(after.payments.get(p.id), p.id).toBe(expected);
    else expect(["pending", "cancelled"], p.id).toContain(after.payments.get(p.id));
  }
  expect(payments.filter((p) => after.payments.get(p.id) === "cancelled")).toHaveLength(done.cancelled);
  // History: pending → processing → completed | failed, or pending (→ cancelled).
  expect(after.transactions - before.transactions).toBe(instant.length * 3 + (payments.length - instant.length) + done.cancelled);

  // Events: every outbox row published, one per effect, each audited once.
  expect(after.unpublished).toBe(0);
  const delta = (type: string) => (after.published[type] ?? 0) - (before.published[type] ?? 0);
  expect(delta("user.registered")).toBe(users);
  expect(delta("profile.created")).toBe(users);
  expect(delta("profile.updated")).toBe(done.profileEdits);
  expect(delta("payment.created")).toBe(payments.length);
  expect(delta("payment.completed")).toBe(instant.length - declined);
  expect(delta("payment.failed")).toBe(declined);
  expect(delta("payment.cancelled")).toBe(done.cancelled);
  expect(after.audited).toEqual(after.published);
  const events = Object.values(after.published).reduce((a, b) => a + b, 0);
  expect(after.auditRows).toBe(events);

  // Consumers with an inbox took each event once: user.registered by profile, payment.created by payments.
  expect(after.profileInbox - before.profileInbox).toBe(users);
  expect(after.paymentsInbox - before.paymentsInbox).toBe(payments.length);
});
