import { inboxTable, outboxTable } from "@enclave/core/events/tables";
import { sql } from "drizzle-orm";
import { boolean, check, index, integer, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const authSchema = pgSchema("auth");

export const usersTable = authSchema.table(
  "users",
  {
    id: uuid("id").primaryKey(),
    email: text("email").notNull(),
    name: text("name").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["ADMIN", "CUSTOMER", "VENDOR"] })
      .notNull()
      .default("CUSTOMER"),
    emailVerified: boolean("email_verified").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Emails are unique case-insensitively; lookups use the same expression.
    uniqueIndex("users_email_lower_key").on(sql`lower(${t.email})`),
    check("users_role_check", sql`${t.role} in ('ADMIN', 'CUSTOMER', 'VENDOR')`),
  ],
);

/**
 * Refresh tokens are stored as SHA-256 hashes. Each rotation adds a row to the same family;
 * presenting a used token revokes the whole family. `expires_at` is the family's absolute
 * expiry, carried over unchanged on rotation.
 */
export const refreshTokensTable = authSchema.table(
  "refresh_tokens",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id")
      .notNull()
      .references(() => usersTable.id, { onDelete: "cascade" }),
    familyId: uuid("family_id").notNull(),
    tokenHash: text("token_hash").notNull().unique("refresh_tokens_token_hash_key"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    index("refresh_tokens_family_idx").on(t.familyId),
    index("refresh_tokens_user_idx").on(t.userId),
    // The prune cron deletes the oldest expired families first.
    index("refresh_tokens_expires_idx").on(t.expiresAt),
  ],
);

/** Failed logins per account key (the lower-cased email, whether or not a user has it). */
export const loginAttemptsTable = authSchema.table("login_attempts", {
  accountKey: text("account_key").primaryKey(),
  failures: integer("failures").notNull().default(0),
  windowStartedAt: timestamp("window_started_at", { withTimezone: true }).notNull().defaultNow(),
  lockedUntil: timestamp("locked_until", { withTimezone: true }),
});

export const authOutbox = outboxTable(authSchema);
export const authInbox = inboxTable(authSchema);
