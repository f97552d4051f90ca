/**
 * What the fault tests share: the local runtime as `npm run dev` runs it, in a process of its own
 * that can be killed; a TCP proxy between a runtime and PostgreSQL that can be cut; plain HTTP
 * calls that tell an answer from no answer; the services' databases opened for counting; and the
 * mixed traffic and exactly-once count of the kill tests (here and on the stage twin).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { join } from "node:path";
import { type Database, openDatabase, rowsOf } from "@enclave/core";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { repositoryRoot } from "./runtime";

export const serviceNames = ["auth", "profile", "payments", "admin"] as const;

export interface DevProcess {
  base: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exited: Promise<number | null>;
  output(): string;
}

/** `npm run dev` (the CLI's dev command) in its own process; resolves once it prints its address. */
export function startDev(env: Record<string, string>): Promise<DevProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "packages/local/src/cli.ts", "dev"], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "error", ...env },
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      const port = /auth\s+http:\/\/127\.0\.0\.1:(\d+)\/auth/.exec(output)?.[1];
      if (port) {
        child.stdout?.off("data", onData);
        child.stdout?.on("data", (more: Buffer) => (output += more));
        resolve({ base: `http://127.0.0.1:${port}`, child, exited, output: () => output });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => (output += chunk));
    void exited.then((code) => reject(new Error(`npm run dev exited (${code}) before it was ready:\n${output}`)));
  });
}

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field in assertions
  body: any;
  headers: Headers;
}

/** One HTTP call; undefined when no answer came (connection refused or reset). */
export async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer | undefined> {
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
  } catch {
    return undefined;
  }
}

/** Deliveries the local bus has on disk, waiting (what a restart delivers). */
export function pendingDeliveries(stageDir: string): string[] {
  try {
    return readdirSync(join(stageDir, "bus", "pending")).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
}

/** Each service's database, for counting: the PGlite directories under DATA_DIR, or one server URL. */
export async function openServiceDatabases(where: { stageDir: string } | { url: string }): Promise<{ of(service: string): Database; close(): Promise<void> }> {
  const opened = new Map<string, Database>();
  if ("url" in where) {
    const shared = await openDatabase(where.url, { maxConnections: 2 });
    for (const service of serviceNames) opened.set(service, shared);
  } else {
    for (const service of serviceNames) opened.set(service, await openDatabase(`pglite://${join(where.stageDir, service)}`));
  }
  return {
    of: (service) => opened.get(service) as Database,
    close: async () => {
      await Promise.all([...new Set(opened.values())].map((database) => database.close()));
    },
  };
}

export async function rows<T = Record<string, unknown>>(database: Database, query: string): Promise<T[]> {
  return rowsOf<T>(await database.db.execute(sql.raw(query)));
}

/**
 * A TCP proxy in front of PostgreSQL that the test controls: `cut()` resets every open connection
 * and refuses new ones (the database has gone away); `restore()` accepts again on the same port.
 * `stall()` keeps every connection open but passes no byte either way, and holds new ones (a
 * server or network that stopped answering); `unstall()` resets the connections held through the
 * stall, their bytes dropped (as after a failover), and passes new ones through again.
 */
export class TcpProxy {
  private server: Server | undefined;
  /** Every proxied connection still open, as the client's socket and its upstream. */
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private stalled = false;
  port = 0;
  connections = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<this> {
    const server = createServer((client) => {
      this.connections++;
      const upstream = new Socket();
      const pair = { client, upstream };
      for (const socket of [client, upstream]) socket.on("error", () => {});
      this.pairs.add(pair);
      upstream.connect(this.target.port, this.target.host);
      if (!this.stalled) client.pipe(upstream).pipe(client);
      client.on("close", () => {
        this.pairs.delete(pair);
        upstream.destroy();
      });
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.resetConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.start();
  }

  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  unstall(): void {
    this.stalled = false;
    this.resetConnections();
  }

  private resetConnections(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
  }

  async close(): Promise<void> {
    await this.cut();
  }
}

// ---------------------------------------------------------------------------------------------
// Mixed traffic and the exactly-once count, shared by the kill tests of `npm run dev` and of the stage twin.

export const faultPassword = "correct horse battery";

export interface TrafficUser {
  email: string;
  token: string;
  id: string;
}

export type Sent =
  | { op: "register"; email: string; answer?: Answer }
  | { op: "login"; email: string; answer?: Answer }
  | { op: "pay"; key: string; sender: TrafficUser; body: { recipientEmail: string; amount: string }; answer?: Answer }
  | { op: "patch"; user: TrafficUser; seq: number; answer?: Answer };

/** A write the client was told succeeded. */
export const acknowledged = (sent: Sent) =>
  sent.answer !== undefined &&
  ((sent.op === "register" && sent.answer.status === 201) ||
    (sent.op === "pay" && sent.answer.status === 201) ||
    (sent.op === "patch" && sent.answer.status === 200));

export async function registerUser(base: string, email: string): Promise<TrafficUser> {
  const answer = await call(base, "POST", "/auth/register", { body: { email, password: faultPassword, name: "Fault" } });
  if (answer?.status !== 201) throw new Error(`registering ${email} answered ${answer?.status}: ${JSON.stringify(answer?.body)}`);
  return { email, token: answer.body.accessToken, id: answer.body.user.id };
}

/**
 * Four clients sending registrations, sign-ins, payments (each with its own Idempotency-Key) and
 * profile edits between `users` until `stopped()` says so; every request and its answer (undefined
 * when none came) lands in `sent`. Resolves when every client has stopped.
 */
export async function mixedTraffic(base: string, users: TrafficUser[], run: string, sent: Sent[], stopped: () => boolean): Promise<void> {
  let counter = 0;
  const ops = ["register", "pay", "patch", "login", "pay", "patch"] as const;
  const client = async (worker: number) => {
    for (let step = 0; !stopped(); step++) {
      const n = counter++;
      const op = ops[(worker + step) % ops.length]!;
      const sender = users[n % users.length]!;
      if (op === "register") {
        const entry: Sent = { op, email: `mixed-${n}-${run}@example.com` };
        sent.push(entry);
        entry.answer = await call(base, "POST", "/auth/register", { body: { email: entry.email, password: faultPassword, name: `Mixed ${n}` } });
      } else if (op === "login") {
        const entry: Sent = { op, email: sender.email };
        sent.push(entry);
        entry.answer = await call(base, "POST", "/auth/login", { body: { email: sender.email, password: faultPassword } });
      } else if (op === "pay") {
        const recipient = users[(n + 1) % users.length]!;
        const body = { recipientEmail: recipient.email, amount: `${1 + (n % 9)}.${String(n % 100).padStart(2, "0")}` };
        const entry: Sent = { op, key: randomUUID(), sender, body };
        sent.push(entry);
        entry.answer = await call(base, "POST", "/payments", { body, token: sender.token, headers: { "idempotency-key": entry.key } });
      } else {
        const entry: Sent = { op: "patch", user: sender, seq: n };
        sent.push(entry);
        entry.answer = await call(base, "PATCH", "/profiles/me", { body: { bio: `update ${n}` }, token: sender.token });
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(client));
}

/**
 * What clients do after a failure: replay every payment with its key (the same payment comes back
 * for an acknowledged one), register again what got no success (201, or 409 when it had gone
 * through), and sign in as every acknowledged registration. Returns each key's payment id.
 */
export async function retryAsClients(base: string, sent: Sent[]): Promise<Map<string, string>> {
  const paymentIds = new Map<string, string>();
  for (const s of sent) if (s.op === "pay" && acknowledged(s)) paymentIds.set(s.key, s.answer!.body.payment.id);
  for (const s of sent) {
    if (s.op === "pay") {
      const replay = await call(base, "POST", "/payments", { body: s.body, token: s.sender.token, headers: { "idempotency-key": s.key } });
      expect([s.key, replay?.status]).toEqual([s.key, 201]);
      if (paymentIds.has(s.key)) expect(replay?.body.payment.id).toBe(paymentIds.get(s.key));
      else paymentIds.set(s.key, replay!.body.payment.id);
    } else if (s.op === "register" && !acknowledged(s)) {
      const retried = await call(base, "POST", "/auth/register", { body: { email: s.email, password: faultPassword, name: "Retried" } });
      expect([201, 409]).toContain(retried?.status);
    }
  }
  for (const s of sent)
    if (s.op === "register" && acknowledged(s))
      expect((await call(base, "POST", "/auth/login", { body: { email: s.email, password: faultPassword } }))?.status).toBe(200);
  return paymentIds;
}

/**
 * Counts every effect of the traffic in the services' databases (`query` runs SQL in a service's
 * database): each registration once, a profile per user, each profile's bio its last acknowledged
 * edit or a later one, one payment per idempotency key (the one its client was given), each status
 * change once, every outbox row published and audited exactly once. `paymentsSettled`: every
 * payment also reached its end (completed or failed).
 */
export async function expectExactlyOnce(
  query: <T>(service: string, text: string) => Promise<T[]>,
  traffic: { sent: Sent[]; users: TrafficUser[]; paymentIds: Map<string, string> },
  options: { paymentsSettled?: boolean } = {},
) {
  const { sent, users, paymentIds } = traffic;
  const emails = (await query<{ email: string }>("auth", "select lower(email) as email from auth.users")).map((r) => r.email);
  for (const s of sent) if (s.op === "register") expect([s.email, emails.filter((e) => e === s.email).length]).toEqual([s.email, 1]);
  expect(new Set(emails).size).toBe(emails.length);
  const userIds = (await query<{ id: string }>("auth", "select id from auth.users")).map((r) => r.id).sort();
  const profiles = await query<{ user_id: string; bio: string | null }>("profile", "select user_id, bio from profile.user_profiles");
  expect(profiles.map((r) => r.user_id).sort()).toEqual(userIds);
  const bios = new Map(profiles.map((r) => [r.user_id, r.bio]));
  for (const user of users) {
    const acked = sent.filter((s): s is Extract<Sent, { op: "patch" }> => s.op === "patch" && s.user === user && acknowledged(s)).map((s) => s.seq);
    if (acked.length > 0) expect(Number(/^update (\d+)$/.exec(bios.get(user.id) ?? "")?.[1])).toBeGreaterThanOrEqual(Math.max(...acked));
  }

  // (The development seed's own payments are not this traffic's.)
  const senders = users.map((u) => `'${u.id}'`).join(", ");
  const payments = await query<{ id: string; status: string }>("payments", `select id, status from payments.payments where sender_id in (${senders})`);
  expect(payments.map((p) => p.id).sort()).toEqual([...paymentIds.values()].sort());
  if (options.paymentsSettled) expect(payments.filter((p) => p.status !== "completed" && p.status !== "failed")).toEqual([]);
  const keys = await query<{ key: string; payment_id: string }>(
    "payments",
    `select key, payment_id from payments.idempotency_keys where caller_id in (${senders})`,
  );
  expect(new Map(keys.map((k) => [k.key, k.payment_id]))).toEqual(paymentIds);
  expect(await query("payments", "select payment_id, status from payments.payment_transactions group by 1, 2 having count(*) > 1")).toEqual([]);

  const events: string[] = [];
  for (const service of serviceNames) {
    const outbox = await query<{ id: string; published: boolean }>(service, `select id, published_at is not null as published from "${service}"."outbox"`);
    expect(outbox.filter((r) => !r.published)).toEqual([]);
    events.push(...outbox.map((r) => r.id));
  }
  const audited = (await query<{ id: string }>("admin", "select id from admin.audit_logs")).map((r) => r.id);
  expect(audited.sort()).toEqual(events.sort());
  return { users: userIds.length, profiles: profiles.length, payments: payments.length, audited: audited.length, events: events.length };
}
