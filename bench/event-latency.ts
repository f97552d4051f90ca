/**
 * Local event latency, commit → effect: how long after auth commits a registration the profile
 * service has committed the user's default profile, through the local runtime's whole chain
 * (auth outbox → relay → local bus with its on-disk pending file → profile consumer → inbox +
 * profile + outbox in one transaction).
 *
 *   npx tsx bench/event-latency.ts            # 200 registrations, PGlite under a temp DATA_DIR
 *   BENCH_EVENTS=500 npx tsx bench/event-latency.ts
 *   TEST_DATABASE_URL=postgres://… npx tsx bench/event-latency.ts   # fresh server databases
 *
 * Method. Both ends are timed at the same kind of point, in-process, with performance.now():
 * the relay calls `bus.publish` right after the statement that committed the change returns,
 * so the bus is instrumented rather than the database:
 *   - commit: when auth's relay publishes the user's user.registered (right after the
 *     registration statement — user, refresh token and outbox row — committed);
 *   - effect: when the profile consumer's relay publishes that user's profile.created (right
 *     after the consumer's transaction — inbox row, profile row, outbox row — committed, i.e.
 *     the moment the profile became visible to readers).
 * Registrations go through `runtime.app.request("/auth/register")` one at a time (each waits
 * for its effect and for the bus to drain), so the figures are latency, not queueing; a burst
 * of concurrent registrations is measured separately. Every service of `npm run dev` runs (the
 * admin audit subscriber gets the same events). scrypt runs at a low cost here: it is spent
 * before the commit, outside what is measured, and only makes the run long. Every user's
 * profile is checked to exist at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AuthContext } from "@enclave/auth";
import type { BusEntry, Database } from "@enclave/core";
import { createTestDatabase, type TestDatabase, testServerUrl } from "@enclave/core/testing/database";
import type { LocalService } from "@enclave/local/registry";
import { createLocalRuntime } from "@enclave/local/runtime";
import { localServices } from "@enclave/local/services";
import { userProfilesTable } from "@enclave/profile/profile.sql";
import { inArray } from "drizzle-orm";

export interface LatencySummary {
  n: number;
  medianMs: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  minMs: number;
}

export interface EventLatencyResult {
  driver: string;
  sequential: LatencySummary;
  burst: LatencySummary & { concurrency: number; wallMs: number };
}

/** Nearest-rank percentile. */
const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
const round = (ms: number) => Math.round(ms * 100) / 100;

export function summarize(samples: number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    medianMs: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted.at(-1) as number),
    minMs: round(sorted[0] as number),
  };
}

/** The services of `npm run dev`, auth with a low scrypt cost (spent before the commit anyway). */
function benchServices(): LocalService[] {
  return localServices.map((service) => {
    if (service.module.manifest.name !== "auth") return service;
    return {
      ...service,
      context: async (local) => ({ ...((await service.context(local)) as AuthContext), passwordCost: 10 }) as AuthContext,
    };
  });
}

export async function measureEventLatency(options: { events?: number; burst?: number; warmup?: number } = {}): Promise<EventLatencyResult> {
  const events = options.events ?? 200;
  const burst = options.burst ?? 100;
  const warmup = options.warmup ?? 10;
  const dataDir = mkdtempSync(join(tmpdir(), "enclave-event-latency-"));
  const servers: TestDatabase[] = [];
  const env: Record<string, string> = { DATA_DIR: dataDir, SEED: "none", LOCAL_CRONS: "0", LOG_LEVEL: "warn" };
  if (testServerUrl) {
    for (const { module } of localServices) {
      const database = await createTestDatabase([module.manifest.name]);
      servers.push(database);
      env[`${module.manifest.name.toUpperCase()}_DATABASE_URL`] = database.url;
    }
  }
  const runtime = await createLocalRuntime({ env, services: benchServices() });

  // The instrument: publish timestamps, keyed by user id, for both ends of the chain.
  const committedAt = new Map<string, number>();
  const effectAt = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const publish = runtime.bus.publish.bind(runtime.bus);
  runtime.bus.publish = async (entries: BusEntry[]) => {
    const now = performance.now();
    for (const entry of entries) {
      const userId = entry.detail.data.userId as string;
      if (entry.detailType === "user.registered") committedAt.set(userId, now);
      if (entry.detailType === "profile.created" && !effectAt.has(userId)) {
        effectAt.set(userId, now);
        waiters.get(userId)?.();
      }
    }
    return publish(entries);
  };

  let counter = 0;
  const register = async () => {
    counter++;
    const response = await runtime.app.request("/auth/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `latency-${counter}@bench.enclave.dev`, password: "bench-password", name: `Bench ${counter}` }),
    });
    if (response.status !== 201) throw new Error(`register answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { user: { id: string } }).user.id;
  };
  const effectOf = (userId: string) => (effectAt.has(userId) ? Promise.resolve() : new Promise<void>((resolve) => waiters.set(userId, resolve)));
  const latencyOf = (userId: string) => (effectAt.get(userId) as number) - (committedAt.get(userId) as number);

  try {
    for (let i = 0; i < warmup; i++) {
      await effectOf(await register());
      await runtime.bus.drain();
    }
    const sequentialUsers: string[] = [];
    for (let i = 0; i < events; i++) {
      const userId = await register();
      await effectOf(userId);
      await runtime.bus.drain();
      sequentialUsers.push(userId);
    }

    const started = performance.now();
    const burstUsers = await Promise.all(Array.from({ length: burst }, () => register()));
    await Promise.all(burstUsers.map(effectOf));
    const wallMs = performance.now() - started;
    await runtime.bus.drain();

    // Every effect really is there.
    const all = [...sequentialUsers, ...burstUsers];
    const profiles = await (runtime.databases.get("profile") as Database).db
      .select({ userId: userProfilesTable.userId })
      .from(userProfilesTable)
      .where(inArray(userProfilesTable.userId, all));
    if (profiles.length !== all.length) throw new Error(`expected ${all.length} profiles, found ${profiles.length}`);

    return {
      driver: (runtime.databases.get("profile") as Database).kind,
      sequential: summarize(sequentialUsers.map(latencyOf)),
      burst: { ...summarize(burstUsers.map(latencyOf)), concurrency: burst, wallMs: round(wallMs) },
    };
  } finally {
    await runtime.close();
    await Promise.all(servers.map((s) => s.dispose()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const events = Number(process.env.BENCH_EVENTS ?? 200);
  measureEventLatency({ events, burst: Number(process.env.BENCH_BURST ?? 100) })
    .then((result) => {
      const line = (label: string, s: LatencySummary) =>
        process.stdout.write(
          `${label.padEnd(40)} n=${String(s.n).padEnd(4)} median ${s.medianMs.toFixed(2)} ms   p90 ${s.p90Ms.toFixed(2)} ms   p99 ${s.p99Ms.toFixed(2)} ms   max ${s.maxMs.toFixed(2)} ms\n`,
        );
      process.stdout.write(`\nLocal event latency, commit → effect (user.registered → profile row), ${result.driver}, node ${process.version}\n\n`);
      line("one registration at a time", result.sequential);
      line(`burst of ${result.burst.concurrency} concurrent registrations`, result.burst);
      process.stdout.write(
        `${"".padEnd(40)} all ${result.burst.concurrency} profiles committed ${result.burst.wallMs.toFixed(0)} ms after the first request (incl. hashing)\n\n`,
      );
    })
    .catch((error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exit(1);
    });
}
