import * as z from "zod/mini";
import { uuidPattern, uuidv7 } from "../ids";
import { type EventData, type EventType, eventCatalog } from "./catalog";

/** `detail` of every event on the bus (API.md). */
export const EventEnvelope = z.object({
  id: z.string().check(z.regex(uuidPattern)),
  type: z.string().check(z.minLength(1)),
  version: z.number().check(z.int(), z.positive()),
  occurredAt: z.string().check(z.minLength(1)),
  data: z.record(z.string(), z.unknown()),
  metadata: z.object({ correlationId: z.string(), actor: z.nullable(z.string()) }),
});
export type EventEnvelope = z.output<typeof EventEnvelope>;

export interface TypedEnvelope<T extends EventType> extends EventEnvelope {
  type: T;
  data: EventData<T>;
}

export interface EventMetadata {
  correlationId: string;
  actor: string | null;
}

/** Builds a new event of a catalog type; the data is checked against the contract here. */
export function createEvent<T extends EventType>(type: T, data: EventData<T>, metadata: EventMetadata, now = new Date()): TypedEnvelope<T> {
  const spec = eventCatalog[type];
  const checked = z.safeParse(spec.data, data);
  if (!checked.success) throw new Error(`event ${type} does not match its contract: ${checked.error.message}`);
  return { id: uuidv7(now.getTime()), type, version: spec.version, occurredAt: now.toISOString(), data: data as EventData<T>, metadata };
}

export { APP, eventSource } from "../manifest";

export class UnknownEventError extends Error {
  override name = "UnknownEventError";
}

/**
 * Parses an envelope a consumer received and checks its data against the catalog. An envelope
 * that cannot be parsed, or a version the consumer does not know, throws: the bus retries and
 * then dead-letters it rather than the consumer dropping it silently.
 */
export function parseEvent<T extends EventType>(detail: unknown, ...accepted: T[]): TypedEnvelope<T> {
  const envelope = z.safeParse(EventEnvelope, detail);
  if (!envelope.success)
    throw new UnknownEventError(`unparseable event envelope: ${envelope.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const type = envelope.data.type as T;
  if (accepted.length > 0 && !accepted.includes(type)) throw new UnknownEventError(`unexpected event type ${type}`);
  // Own keys only: "constructor" or "toString" must not resolve to Object's members.
  if (!Object.hasOwn(eventCatalog, type)) throw new UnknownEventError(`unknown event type ${type}`);
  const spec = eventCatalog[type];
  if (spec.version !== envelope.data.version) throw new UnknownEventError(`unknown version ${envelope.data.version} of ${type}`);
  const data = z.safeParse(spec.data, envelope.data.data);
  if (!data.success) throw new UnknownEventError(`${type} data does not match its contract: ${data.error.message}`);
  return { ...envelope.data, type, data: data.data as EventData<T> };
}
