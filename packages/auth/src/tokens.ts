import { createHash, randomBytes } from "node:crypto";

/** An opaque refresh token (256 random bits) and the hash we store instead of it. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashRefreshToken(token) };
}

export const hashRefreshToken = (token: string) => createHash("sha256").update(token).digest("hex");
