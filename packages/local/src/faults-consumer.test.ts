/**
 * A consumer that throws, again and again, across process deaths. The audit consumer (admin)
 * fails on every event (its database refuses the insert: a trigger the test installs between
 * runs) while everything else works: its deliveries wait for a retry when `npm run dev` is
 * killed, carry their attempts into the next run, are dead-lettered there, survive another kill
 * on disk, are redriven by `npm run events:redrive` with no server running once the fault is
 * fixed, and are applied exactly once. Retries, dead letters and redrive within one process are
 * tested in bus.test.ts and runtime.test.ts; this adds the restarts. On PGlite (a DATA_DIR) and,
 * with TEST_DATABASE_URL, PostgreSQL.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, testServerUrl } from "@enclave/core/testing/database";
import { describe, expect, test, vi } from "vitest";
import type { Delivery } from "./bus";
import { runCli } from "./cli.testing";
import { call, type DevProcess, openServiceDatabases, pendingDeliveries, rows, serviceNames, startDev } from "./faults.testing";

const SLOW = 400_000;
const password = "correct horse battery";

const breakAudit = [
  `create function admin.fault_audit_down() returns trigger language plpgsql as $$ begin raise exception 'audit store unavailable'; end $$`,
  "create trigger fault_audit_down before insert on admin.audit_logs for each row execute function admin.fault_audit_down()",
];
const fixAudit = ["drop trigger fault_audit_down on admin.audit_logs", "drop function admin.fault_audit_down()"];

async function consumerAcrossRestarts(label: string, extraEnv: Record<string, string>, where: (stageDir: string) => { stageDir: string } | { url: string }) {
  const dataDir = mkdtempSync(join(tmpdir(), `enclave-consumer-${label}-`));
  const stageDir = join(dataDir, "local");
  const env = { DATA_DIR: dataDir, SEED: "none", LOCAL_CRONS: "0", BUS_MAX_ATTEMPTS: "3", ...extraEnv };
  let dev: DevProcess | undefined;
  const auditDeliveries = () =>
    pendingDeliveries(stageDir)
      .map((name) => JSON.parse(readFileSync(join(stageDir, "bus", "pending", name), "utf8")) as Delivery)
      .filter((d) => d.subscriber === "admin.audit");
  const register = async (email: string) => {
    const answer = await call(dev!.base, "POST", "/auth/register", { body: { email, password, name: "Audited" } });
    expect(answer?.status).toBe(201);
  };
  const withDatabases = async <T>(use: (of: (service: string) => Parameters<typeof rows>[0]) => Promise<T>): Promise<T> => {
    const opened = await openServiceDatabases(where(stageDir));
    try {
      return await use(opened.of);
    } finally {
      await opened.close();
    }
  };
  const stop = async (signal: "SIGKILL" | "SIGTERM") => {
    dev!.child.kill(signal);
    await dev!.exited;
    dev = undefined;
  };
  try {
    // Migrated, seeded events delivered, stopped; then the audit store starts refusing.
    dev = await startDev({ ...env, BUS_RETRY_BASE_MS: "20" });
    await vi.waitFor(() => expect(pendingDeliveries(stageDir)).toEqual([]), { timeout: 60_000, interval: 50 });
    await stop("SIGTERM");
    await withDatabases(async (of) => {
      for (const statement of breakAudit) await rows(of("admin"), statement);
    });

    // Run 1: the first failure waits for a retry far away when the process is killed.
    dev = await startDev({ ...env, BUS_RETRY_BASE_MS: "600000" });
    const firstEmail = `first-${Date.now()}@example.com`;
    await register(firstEmail);
    // user.registered, and profile.created from the profile consumer, each failed once.
    await vi.waitFor(
      () => {
        const waiting = auditDeliveries();
        expect(waiting.map((d) => d.event["detail-type"]).sort()).toEqual(expect.arrayContaining(["profile.created", "user.registered"]));
        expect(waiting.every((d) => d.attempts === 1)).toBe(true);
      },
      { timeout: 60_000, interval: 50 },
    );
    const retrying = auditDeliveries().map((d) => d.id);
    await stop("SIGKILL");

    // Run 2, still failing: the carried-over deliveries use up their attempts and are
    // dead-lettered, as are a new registration's.
    dev = await startDev({ ...env, BUS_RETRY_BASE_MS: "20" });
    await register(`second-${Date.now()}@example.com`);
    let dead: Delivery[] = [];
    await vi.waitFor(
      async () => {
        dead = (((await call(dev!.base, "GET", "/_local/events/dlq"))?.body.items ?? []) as Delivery[]).filter((d) => d.subscriber === "admin.audit");
        expect(dead).toHaveLength(retrying.length + 2);
        expect(auditDeliveries()).toEqual([]);
      },
      { timeout: 60_000, interval: 50 },
    );
    for (const d of dead) expect([d.attempts, d.lastError]).toEqual([3, expect.stringContaining("audit store unavailable")]);
    // What the dead letter keeps (on disk, on the events page, in the log) is the failure, not the
    // failed query's parameters: the event's data, such as the user's email.
    expect(JSON.stringify(dead.map((d) => d.lastError))).not.toContain(firstEmail);
    expect(dead.map((d) => d.id)).toEqual(expect.arrayContaining(retrying));
    await stop("SIGKILL");
    const auditedBefore = (await withDatabases(async (of) => rows<{ id: string }>(of("admin"), "select id from admin.audit_logs"))).map((r) => r.id);
    for (const d of dead) expect(auditedBefore).not.toContain(d.event.detail.id);

    // Fixed; the dead letters are redriven with no server running, and the next run delivers them.
    await withDatabases(async (of) => {
      for (const statement of fixAudit) await rows(of("admin"), statement);
    });
    const redriven = await runCli(["redrive"], { DATA_DIR: dataDir });
    expect([redriven.code, redriven.stdout]).toEqual([0, `queued ${dead.length} event(s); they are delivered when \`npm run dev\` starts\n`]);
    dev = await startDev({ ...env, BUS_RETRY_BASE_MS: "20" });
    await vi.waitFor(
      async () => {
        expect(pendingDeliveries(stageDir)).toEqual([]);
        expect((await call(dev!.base, "GET", "/_local/events/dlq"))?.body.items).toEqual([]);
      },
      { timeout: 60_000, interval: 50 },
    );
    // Nothing is left to redrive; then the process dies once more.
    expect((await call(dev.base, "POST", "/_local/events/redrive", { body: {} }))?.body).toEqual({ redriven: 0 });
    await stop("SIGKILL");

    // Exactly once: every event any service committed has one audit row, the redriven ones included.
    const { events, audited } = await withDatabases(async (of) => {
      const events: string[] = [];
      for (const service of serviceNames) events.push(...(await rows<{ id: string }>(of(service), `select id from "${service}"."outbox"`)).map((r) => r.id));
      const audited = (await rows<{ id: string }>(of("admin"), "select id from admin.audit_logs")).map((r) => r.id);
      return { events, audited };
    });
    expect(audited.sort()).toEqual(events.sort());
    for (const d of dead) expect(audited).toContain(d.event.detail.id);
    console.info(
      `[consumer ${label}] 5 starts, 2 SIGKILLs with audit deliveries retrying (${retrying.length}) and dead-lettered (${dead.length}), ` +
        `redriven with no server running; events ${events.length}, audit rows ${audited.length}`,
    );
  } finally {
    dev?.child.kill("SIGKILL");
    await dev?.exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe("a consumer that keeps failing, across kills and restarts", () => {
  test(
    "PGlite: retrying at the kill, dead-lettered after the restart, redriven with no server running, applied exactly once",
    async () => {
      await consumerAcrossRestarts("pglite", {}, (stageDir) => ({ stageDir }));
    },
    SLOW,
  );

  test.skipIf(!testServerUrl)(
    "PostgreSQL: the same",
    async () => {
      const database = await createTestDatabase([]);
      try {
        await consumerAcrossRestarts("postgres", { DATABASE_URL: database.url }, () => ({ url: database.url }));
      } finally {
        await database.dispose();
      }
    },
    SLOW,
  );
});
