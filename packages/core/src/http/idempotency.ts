import type { Context } from "hono";
import { AppError } from "../errors";
import type { AppEnv } from "./types";

/**
 * Idempotent creates (`Idempotency-Key`, IETF draft): the route reads the key here; the write
 * stores the response it answers (`createdResponse`) in the same statement as what it created;
 * a retry with the same key and body gets that stored response again, marked
 * `idempotent-replayed: true`, and a retry with another body is 409.
 */

/** The Idempotency-Key header: a bare token or a structured-field string (`"…"`). */
export function idempotencyKeyOf(c: Context<AppEnv>): string {
  const header = c.req.header("idempotency-key");
  const invalid = (message: string) =>
    new AppError("validation_failed", "The Idempotency-Key header is not valid.", { details: [{ path: "Idempotency-Key", message }] });
  if (header === undefined || header.trim() === "") throw invalid("is required");
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length < 1 || key.length > 255) throw invalid("must be 1 to 255 characters");
  if (!/^[\x21-\x7e]+$/.test(key)) throw invalid("must be printable ASCII without spaces");
  return key;
}

/** What an idempotent create stores under its key: the answer to replay. */
export interface StoredResponse<T> {
  status: 201;
  body: T;
}

export const createdResponse = <T>(body: T): StoredResponse<T> => ({ status: 201, body });

/** The key was used before with a different request. */
export const idempotencyKeyReused = () =>
  new AppError("conflict", "This Idempotency-Key was already used with a different request.", {
    details: [{ path: "Idempotency-Key", message: "reused with a different body" }],
  });

/** Answers a create: 201 with its body, marked when it is the replay of an earlier request's answer. */
export function respondCreated<T extends object>(c: Context<AppEnv>, body: T, replayed: boolean) {
  if (replayed) c.header("idempotent-replayed", "true");
  return c.json(body, 201);
}
