import fc from "fast-check";
import { describe, expect, test } from "vitest";
import * as z from "zod/mini";
import { Currency, MAX_AMOUNT, Money, normalizeAmount, toCents } from "./money";

const parse = (value: unknown) => z.safeParse(Money, value);

describe("money at the edge", () => {
  test.each([
    ["12.50", "12.50"],
    ["12.5", "12.50"],
    ["12", "12.00"],
    ["0.01", "0.01"],
    ["007.10", "7.10"],
    [MAX_AMOUNT, MAX_AMOUNT],
  ])("%s is accepted as %s", (input, expected) => {
    expect(parse(input)).toMatchObject({ success: true, data: expected });
  });

  test.each<[unknown, string]>([
    [12.5, "a JSON number"],
    ["0", "zero"],
    ["0.00", "zero with decimals"],
    ["-1.00", "negative"],
    ["100000000.00", "above the maximum"],
    ["1.234", "three decimals"],
    ["1e3", "exponent"],
    [" 12.50", "spaces"],
    ["12.", "a trailing dot"],
    [".5", "no whole part"],
    ["1,00", "a comma"],
    ["NaN", "not a number"],
    ["9".repeat(30), "far too long"],
    [null, "null"],
  ])("%s is refused (%s)", (input) => {
    expect(parse(input).success).toBe(false);
  });

  test("cents are exact for every valid amount (no float rounding)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9_999_999_999 }), (cents) => {
        const text = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`;
        expect(toCents(text)).toBe(cents);
        expect(normalizeAmount(text)).toBe(text);
        expect(parse(text)).toMatchObject({ success: true, data: text });
      }),
    );
  });

  test("currencies are ISO-4217 upper case", () => {
    expect(z.safeParse(Currency, "EUR").success).toBe(true);
    for (const bad of ["eur", "EURO", "E1R", ""]) expect(z.safeParse(Currency, bad).success).toBe(false);
  });
});
