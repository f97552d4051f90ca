import * as z from "zod/mini";

/**
 * Money is a decimal string at the edge (API.md: `^[0-9]+(\.[0-9]{1,2})?$`, > 0, at most
 * 99999999.99), numeric(10,2) in the database, and integer cents when code must compare
 * amounts. It is never a JavaScript number with a fraction.
 */
export const MAX_AMOUNT = "99999999.99";
const moneyPattern = /^[0-9]+(\.[0-9]{1,2})?$/;

/** Integer cents of a valid money string (exact: at most 10 digits, far below 2^53). */
export function toCents(amount: string): number {
  const [whole = "0", fraction = ""] = amount.split(".");
  return Number(whole) * 100 + Number(fraction.padEnd(2, "0"));
}

/** The canonical form of a valid money string: no leading zeros, two decimals (`"7.5"` → `"7.50"`). */
export function normalizeAmount(amount: string): string {
  const [whole = "0", fraction = ""] = amount.split(".");
  return `${whole.replace(/^0+(?=\d)/, "")}.${fraction.padEnd(2, "0")}`;
}

export const Money = z.pipe(
  z.string('must be a decimal string such as "12.50"').check(
    z.maxLength(20, "is too long"),
    z.regex(moneyPattern, 'must be a decimal string with at most 2 decimals, such as "12.50"'),
    z.refine((value) => toCents(value) > 0, "must be greater than 0"),
    z.refine((value) => toCents(value) <= toCents(MAX_AMOUNT), `must be at most ${MAX_AMOUNT}`),
  ),
  z.transform(normalizeAmount),
);

export const Currency = z.string().check(z.regex(/^[A-Z]{3}$/, "must be an ISO-4217 code in upper case, such as USD"));
