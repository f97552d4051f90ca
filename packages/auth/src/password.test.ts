import { describe, expect, test } from "vitest";
import { DEFAULT_SCRYPT_LOG_N, hashPassword, verifyPassword } from "./password";

describe("password hashing", () => {
  test("deployed stages use scrypt N = 2^17, r = 8, p = 1 (OWASP ASVS 5.0)", async () => {
    expect(DEFAULT_SCRYPT_LOG_N).toBe(17);
    const hash = await hashPassword("a long enough password");
    expect(hash).toMatch(/^scrypt\$17\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword("a long enough password", hash)).toBe(true);
  });

  test("salts every hash, and never contains the password", async () => {
    const [a, b] = await Promise.all([hashPassword("same password", 10), hashPassword("same password", 10)]);
    expect(a).not.toBe(b);
    expect(a).not.toContain("same password");
    expect(await verifyPassword("same password", a)).toBe(true);
    expect(await verifyPassword("same password", b)).toBe(true);
  });

  test("rejects any other password", async () => {
    const hash = await hashPassword("correct horse", 10);
    for (const attempt of ["correct hors", "correct horse ", "Correct horse", "", "correct\u0000horse"]) {
      expect(await verifyPassword(attempt, hash), attempt).toBe(false);
    }
  });

  test("normalises Unicode (NFKC) so the same password typed differently still matches", async () => {
    const hash = await hashPassword("caf\u00e9-pass", 10);
    expect(await verifyPassword("cafe\u0301-pass", hash)).toBe(true);
  });

  test("hashes made with another cost stay verifiable (the cost is stored with the hash)", async () => {
    const cheaper = await hashPassword("legacy password", 11);
    expect(cheaper.startsWith("scrypt$11$")).toBe(true);
    expect(await verifyPassword("legacy password", cheaper)).toBe(true);
  });

  test.each([
    ["empty", ""],
    ["another scheme", "bcrypt$10$8$1$c2FsdA$a2V5"],
    ["missing the key", "scrypt$10$8$1$c2FsdA"],
    ["missing the salt", "scrypt$10$8$1$$a2V5"],
    ["plain text", "correct horse"],
  ])("a malformed stored hash (%s) never matches", async (_, stored) => {
    expect(await verifyPassword("correct horse", stored)).toBe(false);
  });

  test("a stored key of another length never matches", async () => {
    const hash = await hashPassword("correct horse", 10);
    const truncated = hash.slice(0, -4);
    expect(await verifyPassword("correct horse", truncated)).toBe(false);
  });
});
