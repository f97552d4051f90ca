import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/**
 * scrypt as OWASP ASVS 5.0 asks (N = 2^17, r = 8, p = 1). The parameters are stored with the
 * hash, so raising the cost later keeps old hashes verifiable.
 */
export const DEFAULT_SCRYPT_LOG_N = 17;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, logN = DEFAULT_SCRYPT_LOG_N): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, logN, R, P);
  return `scrypt$${logN}$${R}$${P}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/**
 * bcrypt hashes as the shared database before the split stored them (`$2a$`, `$2b$`, `$2y$`, cost
 * 4..31, 22 characters of salt and 31 of hash): they stay valid until the user's next sign-in,
 * which replaces them with scrypt.
 */
const legacyBcrypt = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

export const isLegacyHash = (stored: string) => legacyBcrypt.test(stored);

/** Whether a stored hash must be replaced with scrypt after the next successful sign-in. */
export const passwordNeedsRehash = (stored: string) => isLegacyHash(stored);

/** Constant-time comparison; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  // bcrypt hashed the bytes as typed (no Unicode normalisation), so they are compared that way.
  if (isLegacyHash(stored)) {
    // Only sign-ins of accounts not yet rehashed need bcrypt: it loads then, not on every cold start.
    const { default: bcrypt } = await import("bcryptjs");
    return bcrypt.compare(password, stored);
  }
  const [scheme, logN, r, p, salt, key] = stored.split("$");
  if (scheme !== "scrypt" || !logN || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), Number(logN), Number(r), Number(p));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
