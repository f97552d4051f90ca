import { AppError, changed, createEvent, Email, type EventMetadata, iso, mapRow, prepared, type Role, roles, rowsOf, uuidv7 } from "@enclave/core";
import { signAccessToken } from "@enclave/core/http/access-token";
import { eq, sql } from "drizzle-orm";
import * as z from "zod/mini";
import { loginAttemptsTable, refreshTokensTable, usersTable } from "./auth.sql";
import type { AuthContext, Throttle } from "./context";
import { hashPassword, passwordNeedsRehash, verifyPassword } from "./password";
import { addressThrottleKey } from "./source-address";
import { hashRefreshToken, newRefreshToken } from "./tokens";

export const UserInfo = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(roles),
    emailVerified: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .register(z.globalRegistry, {
    id: "User",
    description: "A user account. Never carries the password or its hash.",
    examples: [
      {
        id: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f",
        email: "ada@example.com",
        name: "Ada",
        role: "CUSTOMER",
        emailVerified: false,
        createdAt: "2025-03-14T09:26:53.589Z",
        updatedAt: "2025-03-14T09:26:53.589Z",
      },
    ],
  });
export type UserInfo = z.output<typeof UserInfo>;

export const Password = z.string().check(z.minLength(8, "must be at least 8 characters"), z.maxLength(128, "must be at most 128 characters"));
/** Printable text only: control characters have no place in a name, and PostgreSQL text cannot hold a NUL byte. */
export const Name = z
  .string()
  .check(z.trim(), z.minLength(1, "is required"), z.maxLength(100), z.regex(/^[^\p{Cc}]*$/u, "must not contain control characters"));
export const RegisterInput = z.strictObject({ email: Email, password: Password, name: Name }).register(z.globalRegistry, {
  id: "RegisterRequest",
  description: "A new account: its email (unique, compared case-insensitively), a password of 8 to 128 characters, and a display name.",
  examples: [{ email: "ada@example.com", password: "correct-horse-battery", name: "Ada" }],
});
/** Any stored password may be presented (the seeded admin's comes from configuration), so only the bounds are checked. */
export const LoginInput = z
  .strictObject({
    email: Email,
    password: z.string().check(z.minLength(1), z.maxLength(128)),
  })
  .register(z.globalRegistry, { id: "LoginRequest", examples: [{ email: "ada@example.com", password: "correct-horse-battery" }] });
export const RefreshInput = z.strictObject({ refreshToken: z.string().check(z.minLength(1), z.maxLength(256)) }).register(z.globalRegistry, {
  id: "RefreshRequest",
  description: "A refresh token, as register, login or the last refresh returned it.",
  examples: [{ refreshToken: "q1Ihd6HlBJK2uL0m0yO5d3u8m9bPq3XgkTzJrW8cV1E" }],
});
export const RoleInput = z.strictObject({ role: z.enum(roles) }).register(z.globalRegistry, { id: "ChangeRoleRequest", examples: [{ role: "VENDOR" }] });

export const TokenPair = z.object({ accessToken: z.string(), refreshToken: z.string() }).register(z.globalRegistry, {
  id: "TokenPair",
  description: "A new access token (a JWT, valid for minutes) and the refresh token that replaces the one presented.",
});
export const AuthResult = z.object({ user: UserInfo, accessToken: z.string(), refreshToken: z.string() }).register(z.globalRegistry, {
  id: "AuthResult",
  description: "The signed-in user, an access token (a JWT, valid for minutes) and a refresh token (single use, valid for days).",
});

type UserRow = typeof usersTable.$inferSelect;

export function toUserInfo(row: UserRow): UserInfo {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    emailVerified: row.emailVerified,
    createdAt: iso(row.createdAt) as string,
    updatedAt: iso(row.updatedAt) as string,
  };
}

const accountKey = (email: string) => email.trim().toLowerCase();

async function issueAccessToken(ctx: AuthContext, user: { id: string; role: Role }) {
  return signAccessToken(await ctx.signingKey(), ctx.tokens, user);
}

/** SQL that stores a new refresh token of a family, for use inside a larger statement. */
function insertRefreshToken(ctx: AuthContext, values: { hash: string; familyId: string; userIdSql: ReturnType<typeof sql>; from?: ReturnType<typeof sql> }) {
  const expires = sql`now() + ${`${ctx.refreshTtlSeconds} seconds`}::interval`;
  return sql`insert into ${refreshTokensTable} ("id", "user_id", "family_id", "token_hash", "expires_at") select ${uuidv7()}, ${values.userIdSql}, ${values.familyId}::uuid, ${values.hash}, ${expires} ${values.from ?? sql``}`;
}

/** Registers a customer: user, first refresh token and user.registered in one statement. */
export async function registerUser(ctx: AuthContext, input: z.output<typeof RegisterInput>, metadata: EventMetadata) {
  const db = (await ctx.database()).db;
  const id = uuidv7();
  const passwordHash = await hashPassword(input.password, ctx.passwordCost);
  const refresh = newRefreshToken();
  const event = createEvent("user.registered", { userId: id, email: input.email, name: input.name, role: "CUSTOMER" }, { ...metadata, actor: id });
  const [row] = await ctx.events.commit(db, {
    table: usersTable,
    change: db.insert(usersTable).values({ id, email: input.email, name: input.name, passwordHash, role: "CUSTOMER" }).onConflictDoNothing().returning(),
    also: [insertRefreshToken(ctx, { hash: refresh.hash, familyId: uuidv7(), userIdSql: sql`"id"`, from: sql`from ${changed}` })],
    events: [event],
  });
  if (!row) throw new AppError("conflict", "An account with this email already exists.");
  return { user: toUserInfo(row), accessToken: await issueAccessToken(ctx, row), refreshToken: refresh.token };
}

/** Per cost: an unknown email must cost what a known one costs at the context's own settings. */
const dummyHashes = new Map<number, Promise<string>>();

/**
 * Checks credentials. An unknown email costs the same password check as a known one, answers
 * the same 401, and is throttled the same way, so responses do not reveal which emails exist.
 */
export async function login(ctx: AuthContext, input: z.output<typeof LoginInput>, origin: { address?: string | undefined } = {}) {
  const db = (await ctx.database()).db;
  const key = accountKey(input.email);
  // Failures also count against the source address, so one client cannot try many accounts.
  const address = origin.address ? (addressThrottleKey(origin.address) ?? null) : null;
  const [found] = rowsOf<Record<string, unknown> & { failures: number | null; retry_after: number | null; address_retry_after: number | null }>(
    await db.execute(sql`
      select u.*, a."failures", ceil(extract(epoch from (a."locked_until" - now())))::int as retry_after,
        ceil(extract(epoch from (s."locked_until" - now())))::int as address_retry_after
      from (select ${key}::text as k, ${address}::text as s) k
      left join ${usersTable} u on lower(u."email") = k.k
      left join ${loginAttemptsTable} a on a."account_key" = k.k
      left join ${loginAttemptsTable} s on s."account_key" = k.s`),
  );
  // One answer for either lock, so a 429 does not say which counter ran out.
  const retryAfter = Math.max(found?.retry_after ?? 0, found?.address_retry_after ?? 0);
  if (retryAfter > 0) {
    throw new AppError("rate_limited", "Too many failed sign-ins; retry later.", { headers: { "retry-after": String(retryAfter) } });
  }
  const user = found?.id ? mapRow(usersTable, found) : undefined;
  let dummyHash = dummyHashes.get(ctx.passwordCost);
  if (!dummyHash) dummyHashes.set(ctx.passwordCost, (dummyHash = hashPassword("not-a-real-password", ctx.passwordCost)));
  const valid = await verifyPassword(input.password, user?.passwordHash ?? (await dummyHash));
  if (!user || !valid) {
    await recordFailedLogin(ctx, key, address);
    throw new AppError("unauthorized", "The email or password is wrong.");
  }
  if (passwordNeedsRehash(user.passwordHash)) await upgradePasswordHash(ctx, user.id, user.passwordHash, input.password);
  const refresh = newRefreshToken();
  await db.execute(sql`
    with "token" as (${insertRefreshToken(ctx, { hash: refresh.hash, familyId: uuidv7(), userIdSql: sql`${user.id}::uuid` })}),
    "cleared" as (delete from ${loginAttemptsTable} where "account_key" = ${key})
    select 1`);
  return { user: toUserInfo(user), accessToken: await issueAccessToken(ctx, user), refreshToken: refresh.token };
}

/**
 * Replaces a legacy (bcrypt) hash with scrypt once the password is known to be right. Only if the
 * stored hash is still the one just verified: a password changed meanwhile is never overwritten.
 */
async function upgradePasswordHash(ctx: AuthContext, id: string, verified: string, password: string) {
  const db = (await ctx.database()).db;
  const passwordHash = await hashPassword(password, ctx.passwordCost);
  await db.update(usersTable).set({ passwordHash }).where(sql`${usersTable.id} = ${id} and ${usersTable.passwordHash} = ${verified}`);
}

async function recordFailedLogin(ctx: AuthContext, key: string, address: string | null) {
  const db = (await ctx.database()).db;
  const upsert = (rowKey: string, { maxFailures, windowSeconds, lockSeconds }: Throttle) => {
    const window = `${windowSeconds} seconds`;
    const expired = sql`${loginAttemptsTable.windowStartedAt} < now() - ${window}::interval`;
    const failures = sql`case when ${expired} then 1 else ${loginAttemptsTable.failures} + 1 end`;
    return sql`
    insert into ${loginAttemptsTable} ("account_key", "failures", "window_started_at", "locked_until")
    values (${rowKey}, 1, now(), ${maxFailures <= 1 ? sql`now() + ${`${lockSeconds} seconds`}::interval` : sql`null`})
    on conflict ("account_key") do update set
      "failures" = ${failures},
      "window_started_at" = case when ${expired} then now() else ${loginAttemptsTable.windowStartedAt} end,
      "locked_until" = case when ${failures} >= ${maxFailures} then now() + ${`${lockSeconds} seconds`}::interval else null end`;
  };
  // The account's and the address's counters are two rows of one statement.
  await db.execute(
    address
      ? sql`with "account" as (${upsert(key, ctx.throttle)}), "address" as (${upsert(address, ctx.addressThrottle)}) select 1`
      : upsert(key, ctx.throttle),
  );
}

/**
 * Deletes failed-sign-in counters that no longer matter (window over, no lock in force). Every
 * email ever tried gets a row, known or not, so without this the table only grows.
 */
export async function pruneLoginAttempts(ctx: AuthContext): Promise<{ deleted: number }> {
  const db = (await ctx.database()).db;
  const deleted = await db
    .delete(loginAttemptsTable)
    .where(
      // Address counters (`ip:…`) have their own window.
      sql`${loginAttemptsTable.windowStartedAt} < now() - (case when ${loginAttemptsTable.accountKey} like 'ip:%'
          then ${`${ctx.addressThrottle.windowSeconds} seconds`} else ${`${ctx.throttle.windowSeconds} seconds`} end)::interval
        and (${loginAttemptsTable.lockedUntil} is null or ${loginAttemptsTable.lockedUntil} < now())`,
    )
    .returning({ key: loginAttemptsTable.accountKey });
  return { deleted: deleted.length };
}

/**
 * Rows one refresh-token prune statement deletes, and statements one run makes at most: a backlog
 * (a first run on a full table) is worked off over several hourly runs, each statement brief.
 */
export const refreshTokenPruning = { batchSize: 5_000, maxBatches: 20 } as const;

/**
 * Deletes refresh tokens past their expiry, oldest first. Every sign-in adds a family and every
 * refresh a row to it, so without this the table only grows. `expires_at` is the family's own,
 * carried over on rotation, so a family goes as a whole, and only once none of its tokens could
 * be accepted: an expired token is refused whether or not its row is there, so no answer changes.
 */
export async function pruneExpiredRefreshTokens(
  ctx: AuthContext,
  options: { batchSize?: number; maxBatches?: number } = {},
): Promise<{ deleted: number; capped: boolean }> {
  const { batchSize, maxBatches } = { ...refreshTokenPruning, ...options };
  const db = (await ctx.database()).db;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
    const [row] = rowsOf<{ n: number }>(
      await db.execute(sql`
        with "gone" as (
          delete from ${refreshTokensTable} where "id" in (
            select "id" from ${refreshTokensTable} where "expires_at" < now() order by "expires_at" limit ${batchSize})
          returning 1)
        select count(*)::int as "n" from "gone"`),
    );
    const n = Number(row?.n ?? 0);
    deleted += n;
    if (n < batchSize) return { deleted, capped: false };
  }
  return { deleted, capped: true };
}

/**
 * Rotates a refresh token in one statement. A token that was already used means it leaked (or
 * a client raced itself): its whole family is revoked and the caller must sign in again.
 */
export async function refreshSession(ctx: AuthContext, refreshToken: string) {
  const db = (await ctx.database()).db;
  const hash = hashRefreshToken(refreshToken);
  const next = newRefreshToken();
  const [user] = rowsOf<{ id: string; role: Role }>(
    await db.execute(sql`
      with "old" as (
        update ${refreshTokensTable} set "used_at" = now()
        where "token_hash" = ${hash} and "used_at" is null and "revoked_at" is null and "expires_at" > now()
        returning "user_id", "family_id", "expires_at"),
      "next" as (
        insert into ${refreshTokensTable} ("id", "user_id", "family_id", "token_hash", "expires_at")
        select ${uuidv7()}, "user_id", "family_id", ${next.hash}, "expires_at" from "old")
      select u."id", u."role" from ${usersTable} u join "old" on u."id" = "old"."user_id"`),
  );
  if (user) return { accessToken: await issueAccessToken(ctx, user), refreshToken: next.token };
  await db.execute(sql`
    update ${refreshTokensTable} set "revoked_at" = now()
    where "revoked_at" is null and "family_id" = (select "family_id" from ${refreshTokensTable} where "token_hash" = ${hash} and "used_at" is not null)`);
  throw new AppError("unauthorized", "The refresh token is invalid, expired or already used.");
}

/** Ends the session the refresh token belongs to (its whole family). Unknown tokens are fine. */
export async function logout(ctx: AuthContext, refreshToken: string) {
  const db = (await ctx.database()).db;
  const hash = hashRefreshToken(refreshToken);
  await db.execute(sql`
    update ${refreshTokensTable} set "revoked_at" = now()
    where "revoked_at" is null and "family_id" = (select "family_id" from ${refreshTokensTable} where "token_hash" = ${hash})`);
}

export async function getUser(ctx: AuthContext, id: string): Promise<UserInfo> {
  const db = (await ctx.database()).db;
  const byId = prepared(db, "auth_user_by_id", (d) =>
    d
      .select()
      .from(usersTable)
      .where(eq(usersTable.id, sql.placeholder("id")))
      .prepare("auth_user_by_id"),
  );
  const [row] = await byId.execute({ id });
  if (!row) throw new AppError("not_found", "No such user.");
  return toUserInfo(row);
}

export async function findUserByEmail(ctx: AuthContext, email: string): Promise<UserInfo> {
  const db = (await ctx.database()).db;
  const [row] = await db
    .select()
    .from(usersTable)
    .where(sql`lower(${usersTable.email}) = ${accountKey(email)}`);
  if (!row) throw new AppError("not_found", "No user has this email.");
  return toUserInfo(row);
}

/**
 * Changes a user's role with an optimistic check on the role read first, so user.role_changed
 * always carries the true previous role even when two admins race.
 */
export async function changeRole(ctx: AuthContext, id: string, to: Role, metadata: EventMetadata): Promise<UserInfo> {
  const db = (await ctx.database()).db;
  const [current] = await db.select().from(usersTable).where(eq(usersTable.id, id));
  if (!current) throw new AppError("not_found", "No such user.");
  if (current.role === to) return toUserInfo(current);
  const event = createEvent("user.role_changed", { userId: id, from: current.role, to }, metadata);
  const [row] = await ctx.events.commit(db, {
    table: usersTable,
    change: db
      .update(usersTable)
      .set({ role: to, updatedAt: sql`now()` })
      .where(sql`${usersTable.id} = ${id} and ${usersTable.role} = ${current.role}`)
      .returning(),
    events: [event],
  });
  if (!row) throw new AppError("conflict", "The role changed concurrently; retry.");
  return toUserInfo(row);
}

/** Creates a user with a given role unless the email exists (seeds). Returns whether it did. */
export async function ensureUser(ctx: AuthContext, input: { email: string; password: string; name: string; role: Role }, metadata: EventMetadata) {
  const db = (await ctx.database()).db;
  const id = uuidv7();
  const event = createEvent("user.registered", { userId: id, email: input.email, name: input.name, role: input.role }, metadata);
  const rows = await ctx.events.commit(db, {
    table: usersTable,
    change: db
      .insert(usersTable)
      .values({ id, email: input.email, name: input.name, role: input.role, passwordHash: await hashPassword(input.password, ctx.passwordCost) })
      .onConflictDoNothing()
      .returning(),
    events: [event],
  });
  return rows.length > 0;
}
