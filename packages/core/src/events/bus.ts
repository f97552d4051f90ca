import type { EventEnvelope } from "./envelope";

export interface BusEntry {
  source: string;
  detailType: string;
  detail: EventEnvelope;
}

/** An event as EventBridge hands it to targets, and as patterns see it. */
export interface BusEvent<Detail = EventEnvelope> {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Detail;
}

export interface PublishResult {
  /** Ids (`detail.id`) that could not be published, with the reason. */
  failed: { id: string; error: string }[];
}

/** Where the relay publishes: EventBridge in the cloud, the local bus in `npm run dev`. */
export interface EventBus {
  publish(entries: BusEntry[]): Promise<PublishResult>;
}

export const PUT_EVENTS_MAX_ENTRIES = 10;

export function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
