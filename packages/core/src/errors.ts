/** Error codes of the public contract (API.md) and the HTTP status each one maps to. */
export const errorStatus = {
  validation_failed: 400,
  malformed_json: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

const defaultMessages: Record<ErrorCode, string> = {
  validation_failed: "The request is not valid.",
  malformed_json: "The request body is not valid JSON.",
  unauthorized: "Authentication is required.",
  forbidden: "You are not allowed to do this.",
  not_found: "Not found.",
  method_not_allowed: "This method is not allowed here.",
  conflict: "The request conflicts with the current state.",
  payload_too_large: "The request body is too large.",
  unsupported_media_type: "The request body must be application/json.",
  rate_limited: "Too many requests; retry later.",
  internal: "Something went wrong on our side.",
  unavailable: "A dependency is unavailable; retry later.",
};

/** The one error the domain throws; the HTTP layer renders it as the API.md error shape. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, options: { details?: unknown; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message ?? defaultMessages[code], { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return errorStatus[this.code];
  }

  toBody(): { error: { code: ErrorCode; message: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/** PostgreSQL SQLSTATE of a driver error, also when drizzle wrapped it (DrizzleQueryError.cause). */
export function pgErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Constraint name of a unique or check violation, when the driver reports it. */
export function pgConstraint(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const name = (current as { constraint?: unknown }).constraint;
    if (typeof name === "string") return name;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

const connectionErrorCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "57P01", "57P03", "08000", "08001", "08003", "08006"]);

/**
 * True when an error means the database could not be reached (rendered as 503, not 500),
 * including a pool or client that was already closed (a process shutting down).
 */
export function isConnectionError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && connectionErrorCodes.has(code)) return true;
    const message = (current as { message?: unknown }).message;
    if (
      typeof message === "string" &&
      /connection terminated|connect ECONNREFUSED|PGlite is closed|Connection refused|WebSocket|pool after calling end|Client was closed|Query read timeout|timeout exceeded when trying to connect/i.test(
        message,
      )
    )
      return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
