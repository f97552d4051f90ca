import * as z from "zod/mini";
import { AppError } from "./errors";
import { uuidPattern } from "./ids";

/** Shared edge schemas (API.md conventions). */
export const Uuid = z.string().check(z.regex(uuidPattern, "must be a UUID"));
export const IsoTime = z.string().check(z.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, "must be an ISO-8601 time"));
export const Email = z.string().check(z.trim(), z.maxLength(254), z.email("must be an email address"));

export const Limit = z._default(z.coerce.number().check(z.int("must be an integer"), z.minimum(1), z.maximum(100)), 20);

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
    if (typeof value.t === "string" && !Number.isNaN(Date.parse(value.t)) && typeof value.id === "string" && uuidPattern.test(value.id)) return value;
  } catch {
    // fall through
  }
  throw new AppError("validation_failed", "The cursor is not valid.", { details: [{ path: "cursor", message: "invalid cursor" }] });
}

/** JSON time of a Date or driver string. */
export const iso = (value: Date | string | null): string | null => (value === null ? null : new Date(value).toISOString());
