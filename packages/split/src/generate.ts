import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { serverUrl } from "@enclave/core/db/index";
import bcrypt from "bcryptjs";
import pg from "pg";
import { copyIn, copyValue, ident } from "./pg-copy";

/**
 * Realistic data for the POC-2 shared database (fixtures/poc2-schema.sql), any size, the same
 * rows for the same seed. About 12 rows per user: a refresh token or so, a profile (9 in 10),
 * two payments with their status history (2-3 transactions each), two audit rows; plus a dozen
 * settings. Loaded with COPY, so 100k rows take seconds.
 */

export const schemaFile = resolve(import.meta.dirname, "../fixtures/poc2-schema.sql");

export interface GenerateOptions {
  /** Users to create; every other table follows from it. */
  users: number;
  seed?: number;
  /** Add rows the target databases refuse (see `DirtyRows`). */
  dirty?: boolean;
  /** bcrypt cost of the users' password hashes (10 was the shared system's; tests use 4). */
  bcryptCost?: number;
  /** Create the schema and its tables first (the schema must not hold them yet). */
  createSchema?: boolean;
}

/** Rows the targets refuse, by source table, with why: what a dirty source is expected to report. */
export type DirtyRows = Record<string, { key: string; why: string }[]>;

export interface Generated {
  counts: Record<string, number>;
  total: number;
  /** A user who can sign in: email and password (the hash in the source is bcrypt). */
  sampleUser: { id: string; email: string; password: string };
  dirty: DirtyRows;
}

/** mulberry32: small, fast and good enough for test data; the same seed gives the same rows. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number) => Math.floor(next() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const hex = (length: number) => {
    let out = "";
    while (out.length < length) out += (int(0x10000) | 0x10000).toString(16).slice(1);
    return out.slice(0, length);
  };
  const uuid = () => {
    const h = hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[int(4)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
  return { next, int, pick, hex, uuid };
}

const firstNames = [
  "Ada",
  "Grace",
  "Alan",
  "Edsger",
  "Barbara",
  "Donald",
  "Frances",
  "Ken",
  "Margaret",
  "Tim",
  "Radia",
  "Linus",
  "Hedy",
  "Niklaus",
  "Sophie",
  "José",
  "Zoë",
  "Björn",
];
const lastNames = [
  "Lovelace",
  "Hopper",
  "Turing",
  "Dijkstra",
  "Liskov",
  "Knuth",
  "Allen",
  "Thompson",
  "Hamilton",
  "Berners-Lee",
  "Perlman",
  "Torvalds",
  "Lamarr",
  "Wirth",
  "Wilson",
  "Núñez",
  "O'Brien",
];
const streets = ["Main Street", "High Street", "Unter den Linden", "Rue de Rivoli", "Baker Street", "Elm Avenue", "Calle Mayor"];
const cities = [
  ["Berlin", "10117", "DE"],
  ["London", "NW1 6XE", "GB"],
  ["Paris", "75001", "FR"],
  ["Springfield", "62701", "US"],
  ["Madrid", "28013", "ES"],
] as const;
const actions = ["user.login", "user.logout", "payment.created", "payment.completed", "profile.updated", "config.changed", "user.password_reset"];
const agents = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)", "okhttp/4.12.0", "curl/8.5.0"];

/** Passwords of generated users, by user number: user i signs in with passwords[i % 8]. */
export const generatedPassword = (i: number) => `poc2-password-${i % 8}`;

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Timestamps as the shared database holds them: timestamp(3) without time zone, UTC. */
const stamp = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

const row = (values: (string | number | boolean | null)[]) => `${values.map(copyValue).join("\t")}\n`;

class TableData {
  private readonly lines: string[] = [];
  rows = 0;
  constructor(readonly columns: string[]) {}
  add(values: (string | number | boolean | null)[]) {
    this.lines.push(row(values));
    this.rows++;
  }
  buffer() {
    return Buffer.from(this.lines.join(""));
  }
}

/** Generates the data set into `schema` of the database at `url`. */
export async function generatePoc2(url: string, schema: string, options: GenerateOptions): Promise<Generated> {
  const rand = random(options.seed ?? 1);
  const cost = options.bcryptCost ?? 10;
  const t0 = Date.UTC(2024, 0, 1);
  const span = 600 * 86_400_000;
  // Eight hashes, one per password, in the three prefixes bcrypt implementations write.
  const hashes = Array.from({ length: 8 }, (_, k) => {
    const salt = Array.from({ length: 22 }, () => rand.pick([...bcryptAlphabet])).join("");
    return bcrypt.hashSync(generatedPassword(k), `$2${["a", "b", "y"][k % 3]}$${String(cost).padStart(2, "0")}$${salt}`);
  });

  const users = new TableData(["id", "email", "password_hash", "name", "role", "email_verified", "created_at", "updated_at"]);
  const tokens = new TableData(["id", "user_id", "token", "expires_at", "created_at"]);
  const profiles = new TableData(["id", "user_id", "avatar_url", "phone", "address", "bio", "preferences", "created_at", "updated_at"]);
  const payments = new TableData([
    "id",
    "sender_id",
    "recipient_id",
    "amount",
    "currency",
    "status",
    "type",
    "description",
    "metadata",
    "psp_transaction_id",
    "psp_status",
    "failure_reason",
    "completed_at",
    "created_at",
    "updated_at",
  ]);
  const transactions = new TableData(["id", "payment_id", "status", "status_message", "psp_transaction_id", "metadata", "created_at"]);
  const audit = new TableData(["id", "user_id", "action", "resource_type", "resource_id", "details", "ip_address", "user_agent", "created_at"]);
  const config = new TableData(["key", "value", "description", "updated_at", "updated_by"]);

  const ids: string[] = [];
  const created: number[] = [];
  const admins: string[] = [];
  const emails: string[] = [];
  for (let i = 0; i < options.users; i++) {
    const id = rand.uuid();
    const first = rand.pick(firstNames);
    const last = rand.pick(lastNames);
    const at = t0 + rand.int(span);
    const role = i === 0 ? "CUSTOMER" : rand.next() < 0.02 ? "ADMIN" : rand.next() < 0.15 ? "VENDOR" : "CUSTOMER";
    const email = `${first
      .normalize("NFD")
      .replace(/[^A-Za-z]/g, "")
      .toLowerCase()}.${last.replace(/[^A-Za-z]/g, "").toLowerCase()}.${i}@example.com`;
    users.add([id, email, hashes[i % 8] as string, `${first} ${last}`, role, rand.next() < 0.7, stamp(at), stamp(at + rand.int(30 * 86_400_000))]);
    ids.push(id);
    created.push(at);
    emails.push(email);
    if (role === "ADMIN") admins.push(id);
  }
  if (admins.length === 0 && ids.length > 1) admins.push(ids[1] as string);

  const profiled = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    const userId = ids[i] as string;
    for (let n = rand.int(3); n > 0; n--) {
      const at = (created[i] as number) + rand.int(span / 2);
      tokens.add([rand.uuid(), userId, rand.hex(64), stamp(at + 30 * 86_400_000), stamp(at)]);
    }
    if (rand.next() < 0.9) {
      const at = (created[i] as number) + rand.int(86_400_000);
      const [city, postal, country] = rand.pick(cities);
      const hasPrefs = rand.next() < 0.6;
      profiled.add(userId);
      profiles.add([
        rand.uuid(),
        userId,
        rand.next() < 0.5 ? `https://cdn.example.com/avatars/${userId}.png` : null,
        rand.next() < 0.7 ? `+${1 + rand.int(9)}${String(rand.int(1e9)).padStart(9, "0")}` : null,
        rand.next() < 0.6 ? `${1 + rand.int(200)} ${rand.pick(streets)}, ${city} ${postal}, ${country}` : null,
        // Tabs, line breaks, quotes, backslashes and non-ASCII text must all arrive unchanged.
        rand.next() < 0.4 ? rand.pick(["Writes code.\nLikes tea.", 'Says "hi"\tand\\or waves', "Ça va? 日本語 ✓", "   "]) : null,
        hasPrefs
          ? JSON.stringify({ theme: rand.pick(["dark", "light"]), language: rand.pick(["en", "de", "fr"]), notifications: { email: rand.next() < 0.5 } })
          : null,
        stamp(at),
        stamp(at + rand.int(86_400_000 * 90)),
      ]);
    }
  }

  const histories: Record<string, string[]> = {
    pending: ["pending"],
    processing: ["pending", "processing"],
    completed: ["pending", "processing", "completed"],
    failed: ["pending", "processing", "failed"],
    cancelled: ["pending", "cancelled"],
  };
  for (let p = 0; p < ids.length * 2; p++) {
    const id = rand.uuid();
    const s = rand.int(ids.length);
    let r = rand.int(ids.length);
    if (r === s) r = (r + 1) % ids.length;
    const at = Math.max(created[s] as number, created[r] as number) + rand.int(span / 3);
    const roll = rand.next();
    const status = roll < 0.7 ? "completed" : roll < 0.8 ? "failed" : roll < 0.88 ? "pending" : roll < 0.94 ? "processing" : "cancelled";
    const typeRoll = rand.next();
    const type = typeRoll < 0.8 ? "instant" : typeRoll < 0.92 ? "scheduled" : "recurring";
    const metadata: Record<string, unknown> = { channel: rand.pick(["web", "ios", "android"]) };
    if (type !== "instant") metadata.scheduledFor = new Date(at + rand.int(14 * 86_400_000)).toISOString();
    if (type === "recurring") metadata.interval = rand.pick(["daily", "weekly", "monthly"]);
    const amount = `${rand.int(20_000)}.${String(rand.int(100)).padStart(2, "0")}`;
    const psp = status === "pending" ? null : `psp_${rand.hex(16)}`;
    const done = status === "completed" ? at + 2000 + rand.int(60_000) : null;
    payments.add([
      id,
      ids[s] as string,
      ids[r] as string,
      amount === "0.00" ? "0.01" : amount,
      rand.next() < 0.9 ? "USD" : rand.pick(["EUR", "GBP"]),
      status,
      type,
      rand.next() < 0.5 ? rand.pick(["Rent", "Dinner 🍕", "Invoice #4411", "Thanks!"]) : null,
      JSON.stringify(metadata),
      psp,
      psp ? (status === "failed" ? "declined" : "ok") : null,
      status === "failed" ? rand.pick(["limit_exceeded", "insufficient_funds"]) : null,
      done === null ? null : stamp(done),
      stamp(at),
      stamp(done ?? at + rand.int(5000)),
    ]);
    (histories[status] as string[]).forEach((step, k) => {
      transactions.add([
        rand.uuid(),
        id,
        step,
        step === "failed" ? "declined by the provider" : null,
        step === "pending" ? null : psp,
        k === 0 ? null : JSON.stringify({ attempt: k }),
        stamp(at + k * 1000),
      ]);
    });
  }

  for (let a = 0; a < ids.length * 2; a++) {
    const u = rand.int(ids.length);
    const action = rand.pick(actions);
    audit.add([
      rand.uuid(),
      rand.next() < 0.95 ? (ids[u] as string) : null,
      action,
      action.split(".")[0] as string,
      rand.uuid(),
      JSON.stringify({ amount: rand.int(1000) / 4, ok: rand.next() < 0.9, tags: ["a", "b"], note: null }),
      `${10 + rand.int(200)}.${rand.int(256)}.${rand.int(256)}.${rand.int(256)}`,
      rand.pick(agents),
      stamp((created[u] as number) + rand.int(span / 2)),
    ]);
  }

  const settings: [string, unknown][] = [
    ["payments.max_amount", 10000],
    ["payments.currencies", ["USD", "EUR", "GBP"]],
    ["feature.new_checkout", true],
    ["feature.flags", { beta: ["ios"], rollout: 0.25 }],
    ["maintenance_mode", false],
    ["support.phone", "+14155550100"],
    ["ui.banner", "Welcome to POC-2"],
    ["limits.daily_transfers", 25],
    ["auth.session_days", 30],
    ["email.sender", "no-reply@example.com"],
    ["psp.timeout_ms", 5000],
    ["retention.audit_days", 365],
  ];
  for (const [key, value] of settings) {
    config.add([key, JSON.stringify(value), `Setting ${key}`, stamp(t0 + rand.int(span)), admins.length > 0 ? rand.pick(admins) : null]);
  }

  const dirty: DirtyRows = {};
  if (options.dirty && ids.length > 2) {
    const note = (table: string, key: string, why: string) => {
      (dirty[table] ??= []).push({ key, why });
    };
    const at = stamp(t0 + span);
    // Sorts after every generated id, so the original is copied first and the twin is refused.
    const twin = `ffffffff${rand.uuid().slice(8)}`;
    users.add([twin, (emails[0] as string).toUpperCase(), hashes[0] as string, "Case Twin", "CUSTOMER", false, at, at]);
    note("users", twin, "users_email_lower_key");
    const twinToken = rand.uuid();
    tokens.add([twinToken, twin, rand.hex(64), at, at]);
    note("refresh_tokens", twinToken, "refresh_tokens_user_id");
    const payment = (why: string, changes: Partial<Record<"recipient" | "amount" | "currency" | "type" | "metadata", string | null>>) => {
      const id = rand.uuid();
      payments.add([
        id,
        ids[1] as string,
        changes.recipient === undefined ? (ids[2] as string) : changes.recipient,
        changes.amount ?? "10.00",
        changes.currency ?? "USD",
        "pending",
        changes.type ?? "instant",
        null,
        changes.metadata ?? null,
        null,
        null,
        null,
        null,
        at,
        at,
      ]);
      note("payments", id, why);
    };
    payment("recipient_id", { recipient: null });
    payment("payments_amount_positive", { amount: "0.00" });
    payment("payments_currency_format", { currency: "usd" });
    payment("payments_not_to_self", { recipient: ids[1] as string });
    payment("payments_schedule_shape", { type: "recurring", metadata: JSON.stringify({ scheduledFor: "2025-01-01T00:00:00Z" }) });
    const profile = (why: string, phone: string | null, address: string | null, userIndex: number) => {
      const id = rand.uuid();
      profiles.add([id, ids[userIndex] as string, null, phone, address, null, null, at, at]);
      note("user_profiles", id, why);
    };
    // Users without a profile, so only the target's checks refuse these rows.
    const withoutProfile = ids.findIndex((id, i) => i > 2 && !profiled.has(id));
    const another = ids.findIndex((id, i) => i > withoutProfile && !profiled.has(id));
    if (withoutProfile > 0) profile("user_profiles_phone_check", "555-0100", null, withoutProfile);
    if (another > 0) profile("user_profiles_address_check", null, "somewhere without a country", another);
    config.add(["Max Payment", "1", null, at, null]);
    note("system_config", "Max Payment", "system_config_key_check");
  }

  const client = new pg.Client({ connectionString: serverUrl(url) });
  await client.connect();
  try {
    await client.query("set timezone to 'UTC'");
    if (options.createSchema !== false) {
      await client.query(`create schema if not exists ${ident(schema)}`);
      await client.query(`set search_path to ${ident(schema)}`);
      await client.query(readFileSync(schemaFile, "utf8"));
    }
    const tables: [string, TableData][] = [
      ["users", users],
      ["refresh_tokens", tokens],
      ["user_profiles", profiles],
      ["payments", payments],
      ["payment_transactions", transactions],
      ["audit_logs", audit],
      ["system_config", config],
    ];
    await client.query("begin");
    for (const [name, data] of tables) {
      await copyIn(client, `copy ${ident(schema)}.${ident(name)} (${data.columns.map(ident).join(", ")}) from stdin`, data.buffer());
    }
    await client.query("commit");
    const counts = Object.fromEntries(tables.map(([name, data]) => [name, data.rows]));
    return {
      counts,
      total: Object.values(counts).reduce((a, b) => a + b, 0),
      sampleUser: { id: ids[0] as string, email: emails[0] as string, password: generatedPassword(0) },
      dirty,
    };
  } finally {
    await client.end();
  }
}

/** `npx tsx packages/split/src/generate.ts --url <url> [--schema public] [--users 10000] [--seed 1] [--dirty] [--bcrypt-cost 10]` */
async function main(args: string[]) {
  const value = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const url = value("url");
  if (!url) {
    process.stderr.write(
      "usage: npx tsx packages/split/src/generate.ts --url <postgres URL> [--schema public] [--users 10000] [--seed 1] [--dirty] [--bcrypt-cost 10]\n",
    );
    process.exitCode = 2;
    return;
  }
  const started = performance.now();
  const generated = await generatePoc2(url, value("schema") ?? "public", {
    users: Number(value("users") ?? 10_000),
    seed: Number(value("seed") ?? 1),
    dirty: args.includes("--dirty"),
    bcryptCost: Number(value("bcrypt-cost") ?? 10),
  });
  process.stdout.write(`${JSON.stringify(generated.counts)}\n${generated.total} rows in ${Math.round(performance.now() - started)} ms\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main(process.argv.slice(2));
