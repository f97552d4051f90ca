import { inboxTable, outboxTable } from "@enclave/core/events/tables";
import { sql } from "drizzle-orm";
import { check, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const profileSchema = pgSchema("profile");

/** A postal address (see `Address` in profile.ts); stored as given, every field optional but `country`. */
export interface StoredAddress {
  line1?: string;
  line2?: string;
  city?: string;
  region?: string;
  postalCode?: string;
  country: string;
}

/**
 * One profile per user. `user_id` is the auth service's user id: a plain reference, never a
 * foreign key (auth's tables live in another database). The unique index on it is what makes
 * lazy creation race-safe: concurrent first requests insert with `on conflict do nothing`.
 */
export const userProfilesTable = profileSchema.table(
  "user_profiles",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull(),
    avatarUrl: text("avatar_url"),
    phone: text("phone"),
    address: jsonb("address").$type<StoredAddress>(),
    bio: text("bio"),
    preferences: jsonb("preferences").$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("user_profiles_user_id_key").on(t.userId),
    check("user_profiles_bio_length_check", sql`char_length(${t.bio}) <= 1000`),
    check("user_profiles_phone_check", sql`${t.phone} ~ '^\\+[1-9][0-9]{1,14}$'`),
    check("user_profiles_preferences_check", sql`jsonb_typeof(${t.preferences}) = 'object'`),
    check("user_profiles_address_check", sql`jsonb_typeof(${t.address}) = 'object'`),
  ],
);

export const profileOutbox = outboxTable(profileSchema);
export const profileInbox = inboxTable(profileSchema);
