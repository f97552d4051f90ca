import type { BusEvent, Delivery } from "./bus";

export type DeliveryStatus = "pending" | "delivered" | "retrying" | "dead";

/** Where one subscriber's delivery of one event stands, as the events page shows it. */
export interface DeliveryState {
  subscriber: string;
  status: DeliveryStatus;
  /** Attempts made since the event was published or last redriven, the successful one included. */
  attempts: number;
  lastError?: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
  deadLetteredAt?: string;
  /** Times it was sent through again from the dead-letter list. */
  redrives: number;
}

/** One event the bus carried, with how each matching subscriber got it. */
export interface RecentEvent {
  /** The bus's id of this publish (publishing the same envelope twice gives two). */
  id: string;
  /** The envelope's id (`detail.id`): what logs, outboxes and inboxes call the event. */
  eventId: string;
  type: string;
  source: string;
  correlationId?: string;
  time: string;
  detail: unknown;
  /** Empty when no subscription matched, which is worth seeing when a pattern is wrong. */
  deliveries: DeliveryState[];
}

interface Entry {
  event: BusEvent;
  deliveries: Map<string, DeliveryState>;
}

/** Longer errors (stack-laden messages) are cut: the full text stays in the dead-letter file. */
const MAX_ERROR_LENGTH = 2000;

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/**
 * An in-memory ring of the last events the local bus carried and the state of each delivery.
 * It only observes: the bus's pending and dead-letter lists stay the source of truth, and
 * nothing here may throw into a delivery, so every method swallows its own faults.
 */
export class RecentEvents {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly limit = 300) {}

  /** An event the bus accepted, before any subscriber sees it. */
  published(event: BusEvent): void {
    this.guard(() => this.entry(event));
  }

  /** A delivery changed state; events that fell out of the ring come back when they move again. */
  track(
    delivery: Delivery,
    change: Pick<DeliveryState, "status"> & Partial<Omit<DeliveryState, "subscriber" | "redrives">>,
    options: { redriven?: boolean } = {},
  ): void {
    this.guard(() => {
      const entry = this.entry(delivery.event);
      const previous = entry.deliveries.get(delivery.subscriber);
      const lastError = change.lastError ?? delivery.lastError;
      entry.deliveries.set(delivery.subscriber, {
        subscriber: delivery.subscriber,
        attempts: delivery.attempts,
        ...change,
        ...(lastError === undefined ? {} : { lastError: lastError.slice(0, MAX_ERROR_LENGTH) }),
        redrives: (previous?.redrives ?? 0) + (options.redriven ? 1 : 0),
      });
    });
  }

  /** Newest first. */
  list(): RecentEvent[] {
    const items: RecentEvent[] = [];
    for (const { event, deliveries } of this.entries.values()) {
      const detail = event.detail as unknown as Record<string, unknown> | null;
      const metadata = (detail && typeof detail === "object" ? detail.metadata : undefined) as Record<string, unknown> | null | undefined;
      items.push({
        id: event.id,
        eventId: text(detail?.id) ?? event.id,
        type: String(event["detail-type"]),
        source: String(event.source),
        correlationId: text(metadata && typeof metadata === "object" ? metadata.correlationId : undefined),
        time: String(event.time),
        detail,
        deliveries: [...deliveries.values()].map((state) => ({ ...state })).sort((a, b) => a.subscriber.localeCompare(b.subscriber)),
      });
    }
    // Insertion order is publish order, except for events that came back into the ring later.
    return items.reverse().sort((a, b) => b.time.localeCompare(a.time));
  }

  private entry(event: BusEvent): Entry {
    let entry = this.entries.get(event.id);
    if (!entry) {
      entry = { event, deliveries: new Map() };
      this.entries.set(event.id, entry);
      for (const oldest of this.entries.keys()) {
        if (this.entries.size <= this.limit) break;
        this.entries.delete(oldest);
      }
    }
    return entry;
  }

  private guard(record: () => void): void {
    try {
      record();
    } catch {
      // Observing must never cost a delivery.
    }
  }
}
