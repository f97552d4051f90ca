import * as z from "zod/mini";
import { AppError } from "./errors";
import { uuidPattern } from "./ids";

/** Shared edge schemas (API.md conventions). Their examples are what the OpenAPI documents offer to send. */
export const Uuid = z
  .string()
  .check(z.regex(uuidPattern, "must be a UUID"))
  .register(z.globalRegistry, { format: "uuid", examples: ["0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f"] });
export const IsoTime = z
  .string()
  .check(z.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, "must be an ISO-8601 time"))
  .register(z.globalRegistry, { format: "date-time", examples: ["2030-01-01T09:00:00Z"] });
export const Email = z
  .string()
  .check(z.trim(), z.maxLength(254), z.email("must be an email address"))
  .register(z.globalRegistry, { examples: ["ada@example.com"] });

/** True when an ISO-8601 time names a real instant: IsoTime checks the shape, this the calendar (no February 30th, no hour 25). */
export function isRealInstant(value: string): boolean {
  const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(value);
  if (!parts || Number.isNaN(Date.parse(value))) return false;
  const [year, month, day, hour, minute, second] = parts.slice(1).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  // Year 0 exists in ISO-8601 and JavaScript but not in PostgreSQL, which refuses it.
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59;
}

/** An ISO-8601 time that names a real instant (the pattern alone admits 2024-02-31). */
export const Instant = /* @__PURE__ */ IsoTime.check(z.refine(isRealInstant, "must be a valid ISO-8601 time"));

/**
 * Text PostgreSQL can store: no control characters (text cannot even hold a NUL) and no unpaired
 * UTF-16 surrogates (JSON allows them; UTF-8, and so PostgreSQL, cannot store them). With the
 * `u` flag a well-formed surrogate pair is one code point, so `\p{Cs}` matches only lone halves.
 */
export const singleLineText = /* @__PURE__ */ z.regex(/^[^\p{Cc}\p{Cs}]*$/u, "must be valid Unicode text without control characters");
/** The same, with tabs and line breaks allowed. */
export const multiLineText = /* @__PURE__ */ z.regex(
  /^(?:[^\p{Cc}\p{Cs}]|[\t\n\r])*$/u,
  "must be valid Unicode text without control characters other than tabs and line breaks",
);
/** Trimmed single-line text of at most `max` characters. */
export const SafeText = (max: number) => z.string().check(z.trim(), z.maxLength(max, `must be at most ${max} characters`), singleLineText);

export const Limit = z
  ._default(z.coerce.number().check(z.int("must be an integer"), z.minimum(1), z.maximum(100)), 20)
  .register(z.globalRegistry, { description: "Items per page, 1 to 100.", examples: [20] });

/** `{items, nextCursor}` pages with an opaque keyset cursor. */
export const pageOf = <T extends z.ZodMiniType>(item: T) => z.object({ items: z.array(item), nextCursor: z.nullable(z.string()) });

export interface Keyset {
  /** ISO time of the last item of the previous page. */
  t: string;
  id: string;
}

export function encodeCursor(keyset: Keyset): string {
  return Buffer.from(JSON.stringify(keyset)).toString("base64url");
}

export function decodeCursor(cursor: string | undefined): Keyset | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Keyset;
    // Only a time the database reads the same way: Date.parse also takes "1" or "0", which
    // PostgreSQL refuses as a timestamp (a 500 instead of a 400).
    if (typeof value.t === "string" && isRealInstant(value.t) && typeof value.id === "string" && uuidPattern.test(value.id)) return value;
  } catch {
    // fall through
  }
  throw new AppError("validation_failed", "The cursor is not valid.", { details: [{ path: "cursor", message: "invalid cursor" }] });
}

/**
 * A cursor as `nextCursor` hands them out (this one continues with what is older than 2030), so
 * that a documented example of `?cursor=` is one the API accepts.
 */
export const CURSOR_EXAMPLE = encodeCursor({ t: "2030-01-01T00:00:00.000Z", id: "0192d4e8-7c3a-7b5e-9f10-2a3b4c5d6e7f" });

/** JSON time of a Date or driver string. */
export const iso = (value: Date | string | null): string | null => (value === null ? null : new Date(value).toISOString());
