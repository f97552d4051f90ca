import * as z from "zod/mini";
import { roles } from "../http/types";

const uuid = z.string().check(z.regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i));
const money = z.string().check(z.regex(/^[0-9]+(\.[0-9]{1,2})?$/));
const role = z.enum(roles);

const paymentData = z.object({
  paymentId: uuid,
  senderId: uuid,
  recipientId: uuid,
  amount: money,
  currency: z.string(),
  status: z.string(),
});
const profileData = z.object({ profileId: uuid, userId: uuid });

/**
 * The event contract (API.md): one schema per event type and version, shared by producers
 * and consumers. Adding a type or a version is additive; changing one is a breaking change.
 */
export const eventCatalog = {
  "user.registered": { service: "auth", version: 1, data: z.object({ userId: uuid, email: z.string(), name: z.string(), role }) },
  "user.role_changed": { service: "auth", version: 1, data: z.object({ userId: uuid, from: role, to: role }) },
  "profile.created": { service: "profile", version: 1, data: profileData },
  "profile.updated": { service: "profile", version: 1, data: profileData },
  "payment.created": { service: "payments", version: 1, data: paymentData },
  "payment.completed": { service: "payments", version: 1, data: paymentData },
  "payment.failed": { service: "payments", version: 1, data: paymentData },
  "payment.cancelled": { service: "payments", version: 1, data: paymentData },
  "config.changed": { service: "admin", version: 1, data: z.object({ key: z.string() }) },
} as const;

export type EventType = keyof typeof eventCatalog;
export type EventData<T extends EventType> = z.output<(typeof eventCatalog)[T]["data"]>;
export const eventTypes = Object.keys(eventCatalog) as EventType[];
