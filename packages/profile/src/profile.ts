import {
  AppError,
  changed,
  createEvent,
  type EventEnvelope,
  type EventMetadata,
  type InboxClaim,
  iso,
  mapRow,
  multiLineText,
  type Queryable,
  rowsOf,
  type ServiceEvents,
  singleLineText,
  uuidv7,
} from "@enclave/core";
import { eq, type SQL, sql } from "drizzle-orm";
import * as z from "zod/mini";
import type { ProfileContext } from "./context";
import { type StoredAddress, userProfilesTable } from "./profile.sql";

/** An unpaired surrogate, which no UTF-8 text (nor jsonb) can hold. */
const unpairedSurrogate = /\p{Cs}/u;

export const MAX_BIO_CHARS = 1000;
export const MAX_PREFERENCES_BYTES = 16 * 1024;
export const MAX_PREFERENCES_DEPTH = 16;

/** A public https URL (a domain name, no credentials), at most 2048 characters. */
export const AvatarUrl = z
  .string()
  .check(
    z.maxLength(2048, "must be at most 2048 characters"),
    z.regex(/^[^\s\p{Cc}\p{Cs}]+$/u, "must not contain spaces or control characters"),
    z.url({ protocol: /^https$/, hostname: z.regexes.domain, error: "must be an https URL with a domain name" }),
    z.refine((value) => {
      try {
        const url = new URL(value);
        return url.username === "" && url.password === "";
      } catch {
        return true; // reported by the URL check above
      }
    }, "must not contain credentials"),
  )
  .register(z.globalRegistry, { format: "uri", pattern: "^https://", examples: ["https://cdn.example.com/avatars/ada.png"] });

/** E.164: `+`, country code, subscriber number; 15 digits at most. */
export const Phone = z
  .string()
  .check(z.regex(/^\+[1-9]\d{1,14}$/, "must be an E.164 phone number, e.g. +14155550123"))
  .register(z.globalRegistry, { examples: ["+14155550123"] });

/** At most 1000 characters (Unicode code points, as PostgreSQL and JSON Schema count them). */
export const Bio = z
  .string()
  .check(
    z.refine((value) => [...value].length <= MAX_BIO_CHARS, `must be at most ${MAX_BIO_CHARS} characters`),
    multiLineText,
  )
  .register(z.globalRegistry, { maxLength: MAX_BIO_CHARS });

const addressLine = (max: number) =>
  z.string().check(z.trim(), z.minLength(1, "must not be empty"), z.maxLength(max, `must be at most ${max} characters`), singleLineText);

/**
 * A postal address as a structured object, so clients can format it for any country. Only
 * `country` (ISO 3166-1 alpha-2, upper case) is required; send `null` to clear the address.
 */
export const Address = z
  .strictObject({
    line1: z.optional(addressLine(200)),
    line2: z.optional(addressLine(200)),
    city: z.optional(addressLine(100)),
    region: z.optional(addressLine(100)),
    postalCode: z.optional(addressLine(20)),
    country: z.string().check(z.regex(/^[A-Z]{2}$/, "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE")),
  })
  .register(z.globalRegistry, {
    description: "Postal address; only `country` (ISO 3166-1 alpha-2) is required.",
    examples: [{ line1: "Unter den Linden 1", city: "Berlin", postalCode: "10117", country: "DE" }],
  });

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;

/** Why a string inside preferences cannot be stored in jsonb, or undefined when it can. */
function textProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "must not contain NUL characters";
  if (unpairedSurrogate.test(text)) return "must be valid Unicode text (no unpaired surrogates)";
  return undefined;
}

/** Why a preferences value cannot be stored, or undefined when it can. */
function preferencesProblem(value: unknown, depth = 1): string | undefined {
  if (depth > MAX_PREFERENCES_DEPTH) return `must not nest deeper than ${MAX_PREFERENCES_DEPTH} levels`;
  if (typeof value === "string") return textProblem(value);
  if (value === null || typeof value !== "object") return undefined;
  const entries = Array.isArray(value) ? value.map((item) => ["", item] as const) : Object.entries(value);
  for (const [key, item] of entries) {
    if (key === "__proto__") return "must not use the key __proto__";
    const keyProblem = textProblem(key);
    if (keyProblem) return keyProblem;
    const problem = preferencesProblem(item, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Free-form client settings: a JSON object of at most 16 KB (serialized), replaced as a whole
 * by PATCH. Kept exactly as sent (no keys dropped or reordered by validation).
 */
export const Preferences = z
  .custom<Record<string, unknown>>(isPlainObject, "must be a JSON object")
  .check(
    z.refine((value) => Buffer.byteLength(JSON.stringify(value)) <= MAX_PREFERENCES_BYTES, `must be at most ${MAX_PREFERENCES_BYTES} bytes as JSON`),
    z.superRefine((value, ctx) => {
      const problem = preferencesProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem, input: value });
    }),
  )
  .register(z.globalRegistry, {
    type: "object",
    additionalProperties: true,
    description: `A JSON object of at most ${MAX_PREFERENCES_BYTES} bytes; replaced as a whole.`,
    examples: [{ theme: "dark", language: "en" }],
  });

const patchFields = ["avatarUrl", "phone", "address", "bio", "preferences"] as const;

/** PATCH /profiles/me: any of the fields; `null` clears one (but preferences, which is `{}` when empty). */
export const ProfilePatch = z
  .strictObject({
    avatarUrl: z.optional(z.nullable(AvatarUrl)),
    phone: z.optional(z.nullable(Phone)),
    address: z.optional(z.nullable(Address)),
    bio: z.optional(z.nullable(Bio)),
    preferences: z.optional(Preferences),
  })
  .check(z.refine((patch) => Object.keys(patch).length > 0, `must contain at least one of ${patchFields.join(", ")}`))
  .register(z.globalRegistry, {
    id: "UpdateProfileRequest",
    description: "Any of the fields, at least one. `null` clears a field; `preferences` is replaced as a whole (`{}` empties it).",
    examples: [
      {
        phone: "+14155550123",
        address: { line1: "Unter den Linden 1", city: "Berlin", postalCode: "10117", country: "DE" },
        bio: "Mathematician; writes the first programs.",
        preferences: { theme: "dark", language: "en" },
      },
    ],
  });
export type ProfilePatch = z.output<typeof ProfilePatch>;

const AddressInfo = z.object({
  line1: z.optional(z.string()),
  line2: z.optional(z.string()),
  city: z.optional(z.string()),
  region: z.optional(z.string()),
  postalCode: z.optional(z.string()),
  country: z.string(),
});

export const ProfileInfo = z
  .object({
    id: z.string(),
    userId: z.string(),
    avatarUrl: z.nullable(z.string()),
    phone: z.nullable(z.string()),
    address: z.nullable(AddressInfo),
    bio: z.nullable(z.string()),
    preferences: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .register(z.globalRegistry, {
    id: "Profile",
    description: "A user's profile; every registered user has one. Fields never set are `null` (`preferences`: `{}`).",
    examples: [
      {
        id: "0192d4e8-7d01-7a3c-8e21-5b6c7d8e9f00",
        userId: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f",
        avatarUrl: "https://cdn.example.com/avatars/ada.png",
        phone: "+14155550123",
        address: { line1: "Unter den Linden 1", city: "Berlin", postalCode: "10117", country: "DE" },
        bio: null,
        preferences: { theme: "dark", language: "en" },
        createdAt: "2025-03-14T09:26:54.012Z",
        updatedAt: "2025-03-15T18:02:11.407Z",
      },
    ],
  });
export type ProfileInfo = z.output<typeof ProfileInfo>;
export const ProfileEnvelope = z.object({ profile: ProfileInfo }).register(z.globalRegistry, { id: "ProfileResponse" });

type ProfileRow = typeof userProfilesTable.$inferSelect;

export function toProfileInfo(row: ProfileRow): ProfileInfo {
  return {
    id: row.id,
    userId: row.userId,
    avatarUrl: row.avatarUrl,
    phone: row.phone,
    address: row.address as StoredAddress | null,
    bio: row.bio,
    preferences: row.preferences ?? {},
    createdAt: iso(row.createdAt) as string,
    updatedAt: iso(row.updatedAt) as string,
  };
}

/**
 * Makes sure `userId` has a profile, in one statement: insert the default profile (and its
 * profile.created outbox row) unless one exists, and otherwise read the existing one. Two
 * concurrent first requests both try the insert; the unique index on `user_id` lets one win
 * and the other do nothing. The loser's statement cannot see the winner's row (its snapshot
 * predates the winner's commit), so it answers no row and the caller reads once more. With an
 * inbox `claim` (the user.registered consumer), the insert happens only in the statement that
 * records the event in the inbox.
 */
export async function ensureProfile(
  db: Queryable,
  events: ServiceEvents,
  userId: string,
  metadata: EventMetadata,
  claim?: InboxClaim,
): Promise<{ row: ProfileRow | undefined; created: EventEnvelope | undefined }> {
  const id = uuidv7();
  const event = createEvent("profile.created", { profileId: id, userId }, metadata);
  const result = await db.execute(sql`
    with ${claim ? sql`${claim.cte}, ` : sql``}${changed} as (
      insert into ${userProfilesTable} ("id", "user_id")
      select ${id}::uuid, ${userId}::uuid
      where not exists (select 1 from ${userProfilesTable} where "user_id" = ${userId}::uuid)${claim ? sql` and ${claim.first}` : sql``}
      on conflict ("user_id") do nothing
      returning *),
    "events" as (${events.record([event], sql`exists (select 1 from ${changed})`)})
    select true as "created", * from ${changed}
    union all
    select false as "created", * from ${userProfilesTable} where "user_id" = ${userId}::uuid and not exists (select 1 from ${changed})`);
  const [raw] = rowsOf<Record<string, unknown> & { created: boolean }>(result);
  return { row: raw ? mapRow(userProfilesTable, raw) : undefined, created: raw?.created ? event : undefined };
}

/**
 * The caller's own profile, created on first access if user.registered has not arrived yet.
 * One round trip when it exists; two when this request creates it (statement, then relay) or
 * loses a creation race (statement, then a read).
 */
export async function getOwnProfile(ctx: ProfileContext, userId: string, metadata: EventMetadata): Promise<ProfileInfo> {
  const db = (await ctx.database()).db;
  const { row, created } = await ensureProfile(db, ctx.events, userId, metadata);
  if (created) await ctx.events.publish(db, [created]);
  if (row) return toProfileInfo(row);
  const [raced] = await db.select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
  if (!raced) throw new Error(`profile of ${userId} vanished while being created`);
  return toProfileInfo(raced);
}

/** Someone's profile; never creates one. */
export async function getProfile(ctx: ProfileContext, userId: string): Promise<ProfileInfo> {
  const db = (await ctx.database()).db;
  const [row] = await db.select().from(userProfilesTable).where(eq(userProfilesTable.userId, userId));
  if (!row) throw new AppError("not_found", "No profile for this user.");
  return toProfileInfo(row);
}

const columnOf = {
  avatarUrl: userProfilesTable.avatarUrl,
  phone: userProfilesTable.phone,
  address: userProfilesTable.address,
  bio: userProfilesTable.bio,
  preferences: userProfilesTable.preferences,
} as const;

function patchValue(field: (typeof patchFields)[number], value: unknown): SQL {
  if (value === null) return sql`null`;
  if (field === "address" || field === "preferences") return sql`${JSON.stringify(value)}::jsonb`;
  return sql`${value as string}::text`;
}

/**
 * Applies a PATCH in one statement: an upsert (so it works before the profile exists), with
 * profile.updated, and profile.created too when the upsert inserted, written to the outbox in
 * the same statement. Both events carry the profile's real id, set in SQL because an existing
 * profile's id is not known beforehand. Then the relay: two round trips in all.
 */
export async function updateOwnProfile(ctx: ProfileContext, userId: string, patch: ProfilePatch, metadata: EventMetadata): Promise<ProfileInfo> {
  const db = (await ctx.database()).db;
  const fields = patchFields.filter((field) => patch[field] !== undefined);
  const id = uuidv7();
  const created = createEvent("profile.created", { profileId: id, userId }, metadata);
  const updated = createEvent("profile.updated", { profileId: id, userId }, metadata);
  const columns = fields.map((field) => sql.identifier(columnOf[field].name));
  const values = fields.map((field) => patchValue(field, patch[field]));
  const updates = columns.map((column) => sql`${column} = excluded.${column}`);
  const result = await db.execute(sql`
    with ${changed} as (
      insert into ${userProfilesTable} ("id", "user_id", ${sql.join(columns, sql`, `)})
      values (${id}::uuid, ${userId}::uuid, ${sql.join(values, sql`, `)})
      on conflict ("user_id") do update set ${sql.join(updates, sql`, `)}, "updated_at" = now()
      returning *, (xmax = 0) as "inserted"),
    "events" as (
      insert into ${ctx.events.outbox} ("id", "source", "type", "detail")
      select e."id", ${ctx.events.source}, e."type", jsonb_set(e."detail", '{data,profileId}', to_jsonb(c."id"))
      from ${changed} c
      cross join (values
        (${created.id}::uuid, ${created.type}, ${JSON.stringify(created)}::jsonb, true),
        (${updated.id}::uuid, ${updated.type}, ${JSON.stringify(updated)}::jsonb, false)
      ) as e("id", "type", "detail", "on_insert")
      where c."inserted" or not e."on_insert"
      returning "detail")
    select c.*, (select jsonb_agg("detail") from "events") as "events" from ${changed} c`);
  const [raw] = rowsOf<Record<string, unknown> & { events: EventEnvelope[] | string }>(result);
  if (!raw) throw new Error("profile upsert returned no row");
  const events = (typeof raw.events === "string" ? JSON.parse(raw.events) : raw.events) as EventEnvelope[];
  // profile.created first: a consumer that sees both in order sees the profile born, then changed.
  events.sort((a, b) => (a.type === b.type ? 0 : a.type === "profile.created" ? -1 : 1));
  await ctx.events.publish(db, events);
  return toProfileInfo(mapRow(userProfilesTable, raw));
}

/**
 * The effect of user.registered: the default profile, unless the user already has one (they
 * asked for it before the event arrived), in the statement that records the event in the
 * consumer's inbox (`claim`); returns the profile.created event to relay after commit, if it
 * created the profile.
 */
export async function createDefaultProfile(
  db: Queryable,
  ctx: ProfileContext,
  userId: string,
  metadata: EventMetadata,
  claim?: InboxClaim,
): Promise<EventEnvelope | undefined> {
  return (await ensureProfile(db, ctx.events, userId, metadata, claim)).created;
}
