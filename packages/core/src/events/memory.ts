import type { BusEntry, EventBus, PublishResult } from "./bus";

/** A bus that keeps what it is given: for tests, and to simulate a bus that is down. */
export interface MemoryBus extends EventBus {
  entries: BusEntry[];
  /** While true, every publish fails (as if EventBridge were unreachable). */
  down: boolean;
}

export function memoryBus(): MemoryBus {
  const bus: MemoryBus = {
    entries: [],
    down: false,
    async publish(entries): Promise<PublishResult> {
      if (bus.down) return { failed: entries.map((e) => ({ id: e.detail.id, error: "bus down" })) };
      bus.entries.push(...entries);
      return { failed: [] };
    },
  };
  return bus;
}
