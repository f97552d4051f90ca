import type { ServiceContext } from "../context";
import type { Database } from "../db/index";
import { type MemoryBus, memoryBus } from "../events/memory";
import { serviceEvents } from "../events/publisher";
import type { InboxTable, OutboxTable } from "../events/tables";
import type { TokenVerifier } from "../http/types";
import { APP, eventSource } from "../manifest";

/** A service's context around a test database and an in-memory bus, events bound as deployed. */
export function testServiceContext(
  service: string,
  outbox: OutboxTable,
  parts: { database: Database; verifier: TokenVerifier; bus?: MemoryBus; inbox?: InboxTable },
): ServiceContext & { bus: MemoryBus } {
  const bus = parts.bus ?? memoryBus();
  return {
    app: APP,
    service,
    stage: "test",
    database: async () => parts.database,
    bus,
    events: serviceEvents(service, eventSource(APP, service), outbox, bus, parts.inbox),
    verifier: parts.verifier,
  };
}
