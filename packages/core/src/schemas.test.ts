import fc from "fast-check";
import { describe, expect, test } from "vitest";
import * as z from "zod/mini";
import { AppError } from "./errors";
import { uuidv7 } from "./ids";
import { decodeCursor, Email, encodeCursor, IsoTime, iso, Limit, Uuid } from "./schemas";

const keyset = fc.record({
  t: fc.date({ min: new Date("1970-01-01T00:00:00Z"), max: new Date("2999-12-31T23:59:59Z"), noInvalidDate: true }).map((d) => d.toISOString()),
  id: fc.uuid(),
});

function cursorError(cursor: string): AppError {
  try {
    decodeCursor(cursor);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error(`cursor ${cursor} was accepted`);
}

describe("cursors", () => {
  test("property: decode(encode(k)) is k, and the cursor is URL-safe", () => {
    fc.assert(
      fc.property(keyset, (k) => {
        const cursor = encodeCursor(k);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeCursor(cursor)).toEqual(k);
      }),
    );
  });

  test("property: any other string is a 400 validation_failed on `cursor`, never a crash", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (cursor) => {
        let decoded: unknown;
        try {
          decoded = decodeCursor(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          expect((error as AppError).code).toBe("validation_failed");
          expect((error as AppError).details).toEqual([{ path: "cursor", message: "invalid cursor" }]);
          return;
        }
        // Only a well-formed keyset decodes.
        expect(decoded).toEqual({ t: expect.any(String), id: expect.any(String) });
      }),
    );
  });

  test("tampered cursors are rejected", () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    expect(decodeCursor(undefined)).toBeUndefined();
    for (const value of [null, 1, "x", [], {}, { t: "yesterday", id: uuidv7() }, { t: new Date().toISOString(), id: "1 or 1=1" }, { t: 5, id: uuidv7() }]) {
      expect(cursorError(b64(value)).code, JSON.stringify(value)).toBe("validation_failed");
    }
    expect(cursorError("").status).toBe(400);
    expect(cursorError("%%%").status).toBe(400);
  });
});

describe("edge schemas", () => {
  test("Limit defaults to 20 and allows 1..100 integers", () => {
    expect(z.parse(Limit, undefined)).toBe(20);
    expect(z.parse(Limit, "1")).toBe(1);
    expect(z.parse(Limit, "100")).toBe(100);
    for (const bad of ["0", "101", "2.5", "abc", "-1"]) expect(z.safeParse(Limit, bad).success, bad).toBe(false);
  });

  test("Uuid, IsoTime and Email", () => {
    expect(z.safeParse(Uuid, uuidv7()).success).toBe(true);
    expect(z.safeParse(Uuid, "not-a-uuid").success).toBe(false);
    expect(z.safeParse(IsoTime, "2026-11-01T10:00:00Z").success).toBe(true);
    expect(z.safeParse(IsoTime, "2026-11-01T10:00:00.123+02:00").success).toBe(true);
    expect(z.safeParse(IsoTime, "2026-11-01").success).toBe(false);
    expect(z.parse(Email, "  a@b.io ")).toBe("a@b.io");
    expect(z.safeParse(Email, "nope").success).toBe(false);
    expect(z.safeParse(Email, `${"a".repeat(250)}@b.io`).success).toBe(false);
  });

  test("iso renders Dates and driver strings as UTC ISO-8601", () => {
    expect(iso(new Date("2026-11-01T10:00:00Z"))).toBe("2026-11-01T10:00:00.000Z");
    expect(iso("2026-11-01 12:00:00+02")).toBe("2026-11-01T10:00:00.000Z");
    expect(iso(null)).toBeNull();
  });
});
