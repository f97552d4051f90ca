import type { Context } from "hono";
import { AppError, isAppError, isConnectionError } from "../errors";
import { describeError, log } from "../log";

/** Renders any error as the API.md error shape; internals are logged, never returned. */
export function renderError(error: unknown, c: Context): Response {
  let appError: AppError;
  if (isAppError(error)) {
    appError = error;
  } else if (isConnectionError(error)) {
    appError = new AppError("unavailable", "The database is unavailable; retry later.");
    log("error", "dependency unavailable", { requestId: c.get("requestId"), ...describeError(error) });
  } else {
    appError = new AppError("internal");
    log("error", "unhandled error", { requestId: c.get("requestId"), method: c.req.method, path: c.req.path, ...describeError(error) });
  }
  for (const [name, value] of Object.entries(appError.headers)) c.header(name, value);
  return c.json(appError.toBody(), appError.status as 400);
}
