import pg from "pg";
import { expect } from "vitest";
import type { Twin } from "./twin";

/** The services of a stage, in deploy order. */
export const stageServices = ["auth", "profile", "payments", "admin"] as const;

/** A query on the twin's server as the superuser (over its socket), in one of the stage's databases. */
export async function twinSql<T>(twin: Twin, database: string, text: string): Promise<T[]> {
  const client = new pg.Client({ host: twin.postgres.socket, port: twin.postgres.port, user: "postgres", database });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Unpublished outbox rows across the services. */
export async function unpublishedEvents(twin: Twin, databaseOf: (service: string) => string): Promise<number> {
  let total = 0;
  for (const service of stageServices) {
    const [row] = await twinSql<{ count: string }>(twin, databaseOf(service), `select count(*) from ${service}.outbox where published_at is null`);
    total += Number(row?.count);
  }
  return total;
}

/** Runs every outbox sweeper once, as its every-minute schedule does, and waits for what it published. */
export async function fireSweepers(twin: Twin) {
  for (const schedule of twin.model.schedules.filter((s) => twin.model.functions.find((f) => f.name === s.functionName)?.component.endsWith("OutboxSweeper"))) {
    const run = await twin.scheduler.fire(schedule.name);
    expect(run.invocation?.status, schedule.name).toBe("succeeded");
  }
  await twin.idle();
}

/**
 * Publishes what the outboxes hold, as the every-minute sweepers do: the deploy's seed events
 * wait there. The sweepers leave rows younger than their grace period (a relay may still be at
 * work), so this fires them until nothing is left.
 */
export async function sweepOutboxes(twin: Twin, databaseOf: (service: string) => string) {
  for (let round = 0; round < 20 && (await unpublishedEvents(twin, databaseOf)) > 0; round++) {
    await fireSweepers(twin);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  expect(await unpublishedEvents(twin, databaseOf)).toBe(0);
}
