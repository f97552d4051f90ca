/**
 * How each table of the shared POC-2 database maps onto the per-service databases. Every target
 * column is an SQL expression over the source row, computed in the source database, typed as the
 * target column is; the same expressions give the source side of the checksums, so what is
 * compared is exactly what was written. Sessions run with TimeZone UTC: the source's
 * `timestamp(3) without time zone` holds UTC, and `at time zone 'UTC'` makes it an instant.
 */

export const services = ["auth", "profile", "payments", "admin"] as const;
export type Service = (typeof services)[number];

export interface TableMap {
  /** The service whose database receives the rows. */
  service: Service;
  /** The table in the source schema. */
  source: string;
  /** The table in the service's schema. */
  target: string;
  /** The target's key: conflicts on it are rows already copied; verification is per key. */
  key: string;
  /**
   * The source columns the copy walks the table by (keyset pagination), with their types for
   * literals. Payment transactions go by payment and time, so that each payment's history is
   * appended in order and the target's `seq` lists it oldest first.
   */
  order: { column: string; type: string }[];
  /** Target columns each batch is inserted in the order of; the key when not given. */
  appendOrder?: string[];
  /**
   * A target column whose rows of one value are written in one batch (the source order keeps them
   * together): batches written side by side then cannot interleave one payment's history.
   */
  wholeBy?: string;
  /**
   * Whether batches may be written side by side on several connections: only where no unique
   * constraint but the key can be met by two source rows. Elsewhere (an email unique in any
   * case, one profile per user) batches are written in source order, so which of two clashing
   * rows is refused is always the same: the later one.
   */
  sideBySide?: boolean;
  /** Target column → source expression. Target columns not listed (generated, or the time a row was written) are left to the target. */
  columns: [target: string, source: string][];
}

const utc = (column: string) => `(${column} at time zone 'UTC')`;
const uuid = (column: string) => `${column}::uuid`;
const byId = [{ column: "id", type: "text" }];

/**
 * The scheduled time of a scheduled or recurring payment, from its metadata; anything that is
 * not an ISO-8601 time with a zone stays null, so the target's schedule check names the row
 * instead of a cast error stopping the copy.
 */
const scheduledFor = `(case when type::text in ('scheduled', 'recurring') and metadata->>'scheduledFor' ~ '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?(Z|[+-]\\d{2}:?\\d{2})$' then (metadata->>'scheduledFor')::timestamptz end)`;

/**
 * A free-text address ending in ", <ISO country code>" becomes `{line1, country}`; any other
 * text becomes a JSON string, which the target's address check refuses, so the row is reported.
 */
const address = `(case when address is null then null when address ~ ',\\s*[A-Z]{2}\\s*$' then jsonb_build_object('line1', btrim(regexp_replace(address, ',\\s*[A-Z]{2}\\s*$', '')), 'country', substring(address from ',\\s*([A-Z]{2})\\s*$')) else to_jsonb(address) end)`;

/** Marks the audit rows the split wrote, beside the correlation ids of rows written by events. */
export const SPLIT_CORRELATION_ID = "db:split";

export const tableMaps: TableMap[] = [
  {
    service: "auth",
    source: "users",
    target: "users",
    key: "id",
    order: byId,
    columns: [
      ["id", uuid("id")],
      ["email", "email"],
      ["name", "name"],
      ["password_hash", "password_hash"],
      ["role", "role::text"],
      ["email_verified", "email_verified"],
      ["created_at", utc("created_at")],
      ["updated_at", utc("updated_at")],
    ],
  },
  {
    service: "auth",
    source: "refresh_tokens",
    target: "refresh_tokens",
    key: "id",
    order: byId,
    // Stored as auth stores its own: the SHA-256 of the token, hex; each token is its own family.
    columns: [
      ["id", uuid("id")],
      ["user_id", uuid("user_id")],
      ["family_id", uuid("id")],
      ["token_hash", "encode(sha256(convert_to(token, 'UTF8')), 'hex')"],
      ["created_at", utc("created_at")],
      ["expires_at", utc("expires_at")],
      ["used_at", "null::timestamptz"],
      ["revoked_at", "null::timestamptz"],
    ],
  },
  {
    service: "profile",
    source: "user_profiles",
    target: "user_profiles",
    key: "id",
    order: byId,
    columns: [
      ["id", uuid("id")],
      ["user_id", uuid("user_id")],
      ["avatar_url", "avatar_url"],
      ["phone", "phone"],
      ["address", address],
      ["bio", "bio"],
      ["preferences", "coalesce(preferences, '{}'::jsonb)"],
      ["created_at", utc("created_at")],
      ["updated_at", utc("updated_at")],
    ],
  },
  {
    service: "payments",
    source: "payments",
    target: "payments",
    key: "id",
    order: byId,
    // The one other unique index, (series_id, occurrence), is (id, 1) for every copied row.
    sideBySide: true,
    columns: [
      ["id", uuid("id")],
      ["sender_id", uuid("sender_id")],
      ["recipient_id", uuid("recipient_id")],
      ["amount", "amount::numeric(10,2)"],
      ["currency", "currency"],
      ["status", "status::text"],
      ["type", "type::text"],
      ["description", "description"],
      ["metadata", "metadata"],
      ["scheduled_for", scheduledFor],
      ["recurrence_interval", "(case when type::text = 'recurring' then metadata->>'interval' end)"],
      // A recurring payment of the shared database is the first occurrence of its own series.
      ["series_id", "(case when type::text = 'recurring' then id::uuid end)"],
      ["occurrence", "(case when type::text = 'recurring' then 1 end)"],
      // A completed recurring payment's series is closed: the due cron would otherwise create its
      // next occurrence, and every one missed since, at once. Pending ones continue once completed.
      ["next_payment_id", "(case when type::text = 'recurring' and status::text = 'completed' then id::uuid end)"],
      // When the due cron takes a pending payment over: its schedule, or at once.
      ["due_at", `coalesce(${scheduledFor}, ${utc("created_at")})`],
      ["psp_transaction_id", "psp_transaction_id"],
      ["psp_status", "psp_status"],
      ["failure_reason", "failure_reason"],
      ["completed_at", utc("completed_at")],
      ["created_at", utc("created_at")],
      ["updated_at", utc("updated_at")],
    ],
  },
  {
    service: "payments",
    source: "payment_transactions",
    target: "payment_transactions",
    key: "id",
    order: [
      { column: "payment_id", type: "text" },
      { column: "created_at", type: "timestamp(3)" },
      { column: "id", type: "text" },
    ],
    appendOrder: ["payment_id", "created_at", "id"],
    wholeBy: "payment_id",
    sideBySide: true,
    columns: [
      ["id", uuid("id")],
      ["payment_id", uuid("payment_id")],
      ["status", "status::text"],
      ["status_message", "status_message"],
      ["psp_transaction_id", "psp_transaction_id"],
      ["metadata", "metadata"],
      ["created_at", utc("created_at")],
    ],
  },
  {
    service: "admin",
    source: "audit_logs",
    target: "audit_logs",
    key: "id",
    order: byId,
    sideBySide: true,
    columns: [
      ["id", uuid("id")],
      ["user_id", uuid("user_id")],
      // The shared schema did not record who acted apart from the user.
      ["actor_id", "null::uuid"],
      ["action", "action"],
      ["resource_type", "resource_type"],
      ["resource_id", "resource_id"],
      ["details", "details"],
      ["ip_address", "ip_address"],
      ["user_agent", "user_agent"],
      ["correlation_id", `'${SPLIT_CORRELATION_ID}'::text`],
      ["created_at", utc("created_at")],
    ],
  },
  {
    service: "admin",
    source: "system_config",
    target: "system_config",
    key: "key",
    order: [{ column: "key", type: "text" }],
    columns: [
      ["key", "key"],
      ["value", "value"],
      ["description", "description"],
      ["updated_at", utc("updated_at")],
      ["updated_by", uuid("updated_by")],
    ],
  },
];

export const qualifiedTarget = (map: TableMap) => `${map.service}.${map.target}`;
