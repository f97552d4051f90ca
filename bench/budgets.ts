import type { BenchResults } from "./run";

/** One budget checked against this run's figures. */
export interface Budget {
  name: string;
  /** `count`: bytes and round trips, the same on any machine; `time`: ratios of timings, which a busy machine moves. */
  kind: "count" | "time";
  figure: string;
  limit: string;
  ok: boolean;
}

export const limits = {
  coldToFloor: 1.15,
  coldFasterThanTypical: 1.3,
  noDatabaseToBare: 1.5,
  bundleBytes: 250 * 1024,
  warmToFloor: 0.6,
  warmToPeer: 1.5,
  writeTrips: 3,
  readTrips: 2,
  eventP99Ms: 50,
};

/** Bytes and round trips are counted, not timed. */
const kindOf = (name: string): Budget["kind"] => (/bytes|round trips/.test(name) ? "count" : "time");

const x = (ratio: number) => `${ratio.toFixed(2)}×`;

/** The budgets of the performance targets, from one run's results. Ratios compare medians of the same interleaved runs. */
export function checkBudgets(results: Omit<BenchResults, "budgets">): Budget[] {
  const budgets: Omit<Budget, "kind">[] = [];
  for (const [service, { route, figures }] of Object.entries(results.cold.services)) {
    const enclave = figures.enclave;
    const floor = figures["floor-http"];
    const typical = figures["typical-stack"];
    if (!enclave || !floor || !typical) continue;
    budgets.push({
      name: `cold ${route} (${service}) vs the floor (same driver, same statement)`,
      figure: `${x(enclave.ms / floor.ms)} (${enclave.ms} / ${floor.ms} ms)`,
      limit: `≤ ${limits.coldToFloor}×`,
      ok: enclave.ms / floor.ms <= limits.coldToFloor,
    });
    budgets.push({
      name: `cold ${route} (${service}) vs the typical stack`,
      figure: `${x(typical.ms / enclave.ms)} faster (${typical.ms} / ${enclave.ms} ms)`,
      limit: `≥ ${limits.coldFasterThanTypical}× faster`,
      ok: typical.ms / enclave.ms >= limits.coldFasterThanTypical,
    });
    if (enclave.loadedBytes !== undefined) {
      budgets.push({
        name: `${service} API: bytes loaded by a cold ${route}`,
        figure: `${(enclave.loadedBytes / 1024).toFixed(1)} KB`,
        limit: `≤ ${limits.bundleBytes / 1024} KB`,
        ok: enclave.loadedBytes <= limits.bundleBytes,
      });
    }
  }
  if (Object.keys(results.cold.services).length === 0) {
    // Without a server: what each bundle loads before its first request.
    for (const [service, bundle] of Object.entries(results.bundles)) {
      budgets.push({
        name: `${service} API: bytes loaded before the first request (static imports; no server to measure a database route)`,
        figure: `${(bundle.coldBytes / 1024).toFixed(1)} KB`,
        limit: `≤ ${limits.bundleBytes / 1024} KB`,
        ok: bundle.coldBytes <= limits.bundleBytes,
      });
    }
  }
  const noDb = results.cold.noDatabase;
  if (noDb.enclave && noDb.bare) {
    budgets.push({
      name: "cold GET /auth/.well-known/jwks.json (no database) vs bare node",
      figure: `${x(noDb.enclave.ms / noDb.bare.ms)} (${noDb.enclave.ms} / ${noDb.bare.ms} ms)`,
      limit: `≤ ${limits.noDatabaseToBare}×`,
      ok: noDb.enclave.ms / noDb.bare.ms <= limits.noDatabaseToBare,
    });
  }
  for (const route of results.warm ?? []) {
    if (route.kind !== "read") continue;
    budgets.push({
      name: `warm ${route.route} vs the floor`,
      figure: `${Math.round((route.enclave.perSecond / route.floor.perSecond) * 100)}% (${route.enclave.perSecond} / ${route.floor.perSecond} req/s)`,
      limit: `≥ ${limits.warmToFloor * 100}%`,
      ok: route.enclave.perSecond / route.floor.perSecond >= limits.warmToFloor,
    });
    budgets.push({
      name: `warm ${route.route} vs the warm peer`,
      figure: `${x(route.enclave.perSecond / route.peer.perSecond)} (${route.enclave.perSecond} / ${route.peer.perSecond} req/s)`,
      limit: `≥ ${limits.warmToPeer}×`,
      ok: route.enclave.perSecond / route.peer.perSecond >= limits.warmToPeer,
    });
  }
  for (const route of results.roundTrips.routes) {
    const limit = route.kind === "write" ? limits.writeTrips : limits.readTrips;
    if (route.roundTrips > limit) budgets.push({ name: `round trips ${route.route}`, figure: String(route.roundTrips), limit: `≤ ${limit}`, ok: false });
  }
  const worstRead = Math.max(...results.roundTrips.routes.filter((r) => r.kind === "read").map((r) => r.roundTrips));
  const worstWrite = Math.max(...results.roundTrips.routes.filter((r) => r.kind === "write").map((r) => r.roundTrips));
  budgets.push({ name: "round trips, every read route (most)", figure: String(worstRead), limit: `≤ ${limits.readTrips}`, ok: worstRead <= limits.readTrips });
  budgets.push({
    name: "round trips, every write route (most)",
    figure: String(worstWrite),
    limit: `≤ ${limits.writeTrips}`,
    ok: worstWrite <= limits.writeTrips,
  });
  budgets.push({
    name: `local event latency p99, commit → effect (${results.events.sequential.n} events, ${results.events.driver})`,
    figure: `${results.events.sequential.p99Ms} ms`,
    limit: `< ${limits.eventP99Ms} ms`,
    ok: results.events.sequential.p99Ms < limits.eventP99Ms,
  });
  return budgets.map((budget) => ({ ...budget, kind: kindOf(budget.name) }));
}
