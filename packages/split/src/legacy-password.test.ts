import { passwordNeedsRehash, verifyPassword } from "@enclave/auth/password";
import bcrypt from "bcryptjs";
import { describe, expect, test } from "vitest";

/** Users split from the shared database keep their bcrypt hashes until they next sign in. */
describe("legacy bcrypt hashes in auth", () => {
  const salt = "$2b$04$abcdefghijklmnopqrstuu";
  const hash = bcrypt.hashSync("correct horse", salt);

  test.each(["$2a$", "$2b$", "$2y$"])("a %s hash verifies the right password only, and asks to be replaced", async (prefix) => {
    const stored = prefix + hash.slice(4);
    expect(await verifyPassword("correct horse", stored)).toBe(true);
    for (const wrong of ["correct hors", "Correct horse", "correct horse ", ""]) expect(await verifyPassword(wrong, stored), wrong).toBe(false);
    expect(passwordNeedsRehash(stored)).toBe(true);
  });

  test("bcrypt compares the password as typed: no Unicode normalisation, unlike scrypt", async () => {
    const stored = bcrypt.hashSync("caf\u00e9-pass", salt);
    expect(await verifyPassword("caf\u00e9-pass", stored)).toBe(true);
    expect(await verifyPassword("cafe\u0301-pass", stored)).toBe(false);
  });

  test.each([
    ["another bcrypt variant", `$2x$${hash.slice(4)}`],
    ["a cost out of range", `$2b$03$${hash.slice(7)}`],
    ["a truncated hash", hash.slice(0, -1)],
    ["scrypt", "scrypt$10$8$1$c2FsdA$a2V5"],
  ])("%s is not taken for a legacy hash", async (_, stored) => {
    expect(passwordNeedsRehash(stored)).toBe(false);
    expect(await verifyPassword("correct horse", stored)).toBe(false);
  });
});
