/**
 * Event latency through the stage twin: the deployed packages of auth and of profile's
 * user.registered subscriber in processes of their own, the captured rule, EventBridge's
 * delivery by Lambda's asynchronous invocation, PostgreSQL behind the Neon protocols.
 *
 * Method. Both ends are the moments the twin's EventBridge accepted a PutEvents entry (its
 * `receivedAt`, millisecond resolution): auth's relay puts user.registered right after the
 * registration committed; the subscriber's relay puts profile.created right after its
 * transaction (inbox, profile, outbox) committed. Registrations go through the twin's API one at
 * a time, each waiting until the twin is idle, so the figures are latency, not queueing; the
 * first few (cold starts of the subscriber) are left out. scrypt runs at the deployed cost,
 * before the commit, outside what is measured.
 */
import { randomUUID } from "node:crypto";
import { postgresBinaries } from "@enclave/stage/twin/postgres";
import { startTwin } from "@enclave/stage/twin/twin";
import { type LatencySummary, summarize } from "./event-latency";

export interface TwinEventLatency extends LatencySummary {
  /** Registrations left out before measuring (cold starts). */
  warmup: number;
  twinStartMs: number;
}

/** Undefined where the twin cannot run (no PostgreSQL server binaries). */
export async function measureTwinEventLatency(options: { events: number; warmup?: number }): Promise<TwinEventLatency | undefined> {
  if (!postgresBinaries()) return undefined;
  const warmup = options.warmup ?? 3;
  const twin = await startTwin({ stage: "bench", topology: "per-service", timers: false, maxConcurrency: 1 });
  try {
    const run = randomUUID().slice(0, 8);
    const ids: string[] = [];
    for (let i = 0; i < warmup + options.events; i++) {
      const response = await fetch(`${twin.url}/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: `latency-${i}-${run}@bench.enclave.dev`, password: "correct horse battery", name: `Latency ${i}` }),
      });
      const body = (await response.json()) as { user?: { id: string } };
      if (response.status !== 201 || !body.user) throw new Error(`registration through the twin answered ${response.status}: ${JSON.stringify(body)}`);
      await twin.idle();
      if (i >= warmup) ids.push(body.user.id);
    }
    const acceptedAt = (type: string) =>
      new Map(
        twin.eventBridge
          .entries()
          .filter((e) => e.detailType === type)
          .map((e) => [String((e.detail as { data?: { userId?: string } }).data?.userId), Date.parse(e.receivedAt)]),
      );
    const committed = acceptedAt("user.registered");
    const effected = acceptedAt("profile.created");
    const samples = ids.map((id) => {
      const from = committed.get(id);
      const to = effected.get(id);
      if (from === undefined || to === undefined)
        throw new Error(`user ${id}: ${from === undefined ? "user.registered" : "profile.created"} never reached the twin's bus`);
      return to - from;
    });
    return { ...summarize(samples), warmup, twinStartMs: twin.readyMs };
  } finally {
    await twin.stop();
  }
}
