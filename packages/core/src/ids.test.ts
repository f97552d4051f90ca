import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { uuidPattern, uuidv7 } from "./ids";

describe("uuidv7", () => {
  test("property: version 7, RFC variant, and the first 48 bits are the time in milliseconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), (now) => {
        const id = uuidv7(now);
        expect(id).toMatch(uuidPattern);
        expect(id[14]).toBe("7");
        expect("89ab").toContain(id[19]);
        expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(now);
      }),
    );
  });

  test("property: ids of different milliseconds sort by time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 2 }), fc.integer({ min: 1, max: 10_000_000 }), (a, gap) => {
        const b = Math.min(a + gap, 2 ** 48 - 1);
        expect(uuidv7(a) < uuidv7(b)).toBe(true);
      }),
    );
  });

  test("ids of the same millisecond are distinct", () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 1000 }, () => uuidv7(now)));
    expect(ids.size).toBe(1000);
  });
});
