import { randomBytes } from "node:crypto";
import { createEvent, type EventMetadata, type Seeds } from "@enclave/core";
import { developmentPeople, type SeedPerson, stagingPeople } from "@enclave/core/seed";
import { eq, sql } from "drizzle-orm";
import { usersTable } from "./auth.sql";
import type { AuthContext } from "./context";
import { hashPassword, verifyPassword } from "./password";
import { ensureUser } from "./user";

export const DEFAULT_ADMIN_EMAIL = "admin@enclave.dev";
export const DEFAULT_ADMIN_PASSWORD = "enclave-admin-dev";
/** The development demo users' password: development data only, like the administrator's. */
export const DEMO_PASSWORD = "enclave-demo-dev";

/**
 * A seeded person's account under their fixed id, with user.registered (so profile creates their
 * profile as for anyone who registers), unless the email exists. An existing account under another
 * id is refused: the other services' seeded rows refer to the fixed id.
 */
async function ensurePerson(ctx: AuthContext, person: SeedPerson, password: string, metadata: EventMetadata): Promise<typeof usersTable.$inferSelect> {
  const db = (await ctx.database()).db;
  const event = createEvent("user.registered", { userId: person.id, email: person.email, name: person.name, role: person.role }, metadata);
  const [inserted] = await ctx.events.commit(db, {
    table: usersTable,
    change: db
      .insert(usersTable)
      .values({ id: person.id, email: person.email, name: person.name, role: person.role, passwordHash: await hashPassword(password, ctx.passwordCost) })
      .onConflictDoNothing()
      .returning(),
    events: [event],
  });
  if (inserted) return inserted;
  const [existing] = await db.select().from(usersTable).where(sql`lower(${usersTable.email}) = ${person.email.toLowerCase()}`);
  if (existing?.id !== person.id) {
    throw new Error(
      `auth: seed: ${person.email} ${existing ? `belongs to another account (${existing.id})` : "cannot be created: its id is taken"}; the seed data refers to ${person.id}`,
    );
  }
  return existing;
}

/**
 * Development only (API.md): an administrator with a known password, and demo users (password
 * DEMO_PASSWORD) whom the profile and payments seeds give profiles and payments. No other set
 * creates users with known passwords.
 */
export async function seedDevelopment(ctx: AuthContext, adminPassword = DEFAULT_ADMIN_PASSWORD): Promise<void> {
  const metadata = { correlationId: "seed:development", actor: null };
  await ensureUser(ctx, { email: DEFAULT_ADMIN_EMAIL, password: adminPassword, name: "Enclave Admin", role: "ADMIN" }, metadata);
  for (const person of Object.values(developmentPeople)) await ensurePerson(ctx, person, DEMO_PASSWORD, metadata);
}

/**
 * Staging: a few accounts whose password is STAGING_SEED_PASSWORD. Without it, an account gets a
 * random password nobody knows (nobody can sign in with it). With it, an account whose password
 * differs is given it, so setting or rotating the variable takes effect on the next run.
 */
export async function seedStaging(ctx: AuthContext, password: string | undefined): Promise<void> {
  const db = (await ctx.database()).db;
  const metadata = { correlationId: "seed:staging", actor: null };
  for (const person of Object.values(stagingPeople)) {
    const account = await ensurePerson(ctx, person, password ?? randomBytes(32).toString("base64url"), metadata);
    if (password !== undefined && !(await verifyPassword(password, account.passwordHash))) {
      await db
        .update(usersTable)
        .set({ passwordHash: await hashPassword(password, ctx.passwordCost), updatedAt: sql`now()` })
        .where(eq(usersTable.id, account.id));
    }
  }
}

export const authSeeds: Seeds<AuthContext> = {
  development: (ctx, options) => seedDevelopment(ctx, options.adminPassword),
  staging: (ctx, options) => seedStaging(ctx, options.stagingPassword),
};
