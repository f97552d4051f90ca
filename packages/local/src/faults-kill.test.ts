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
import {
  acknowledged,
  call,
  type DevProcess,
  expectExactlyOnce,
  mixedTraffic,
  openServiceDatabases,
  pendingDeliveries,
  registerUser,
  retryAsClients,
  rows,
  type Sent,
  serviceNames,
  startDev,
  type TrafficUser,
} from "./faults.testing";

const SLOW = 600_000;
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
    const users: TrafficUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await registerUser(base, `base-${i}-${run}@example.com`));

    // Mixed traffic from four clients until the process dies under them.
    let killed = false;
    const clients = mixedTraffic(base, users, run, sent, () => killed);
    await vi.waitFor(() => expect(sent.filter(acknowledged).length).toBeGreaterThanOrEqual(16), { timeout: 300_000, interval: 10 });
    const inFlight = sent.filter((s) => s.answer === undefined).length;
    killed = true;
    dev.child.kill("SIGKILL");
    expect(await dev.exited).toBeNull();
    dev = undefined;
    await clients;
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
    const paymentIds = await retryAsClients(again, sent);
    await settled(dev, stageDir);
    dev.child.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
    dev = undefined;
    expect(pendingDeliveries(stageDir)).toEqual([]);

    // Count everything.
    const after = await openServiceDatabases(where(stageDir));
    try {
      const counted = await expectExactlyOnce(<T>(service: string, text: string) => rows<T>(after.of(service), text), { sent, users, paymentIds });
      const ackedCount = sent.filter(acknowledged).length;
      console.info(
        `[${label}] requests sent ${sent.length + users.length}, acknowledged writes ${ackedCount + users.length}, in flight at the kill ${inFlight}, ` +
          `no answer ${sent.filter((s) => !s.answer).length}; at the kill: ${unpublished.length} unpublished outbox rows, ${pendingAtKill} pending deliveries; ` +
          `after: users ${counted.users}, profiles ${counted.profiles}, payments ${counted.payments}, audit rows ${counted.audited} = events ${counted.events}`,
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
