import { redactSecrets } from "../log";

/**
 * Why a database could not be opened, said the way a person starting the system needs it: the
 * variable to fix, the host and port or the database's name, and what to check. Never the URL
 * itself: it may carry a password. pg, the Neon driver and PGlite each fail in their own way;
 * this is the one place that knows them.
 */

const supportedUrls = "use pglite://memory, pglite://<dir>, postgres://… or a Neon URL";

/** What is wrong with the URL in `variable` before anything is opened; undefined when it can be opened. */
export function databaseUrlProblem(variable: string, url: string): string | undefined {
  if (url.startsWith("pglite://")) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${variable} is not a valid URL (${supportedUrls})`;
  }
  // The scheme is not echoed: in "user:password@host" the parser takes the user for one.
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) return `${variable} is not a PostgreSQL or PGlite URL (${supportedUrls})`;
  if (!parsed.hostname) return `${variable} has no host (postgres://<user>@<host>:<port>/<database>)`;
  return undefined;
}

interface Located {
  host: string;
  port: string;
  database: string;
  user: string;
}

function locate(url: string): Located | undefined {
  try {
    const parsed = new URL(url);
    const user = decodeURIComponent(parsed.username);
    // libpq's defaults, which pg follows: port 5432, and a database named after the user.
    return { host: parsed.hostname, port: parsed.port || "5432", database: decodeURIComponent(parsed.pathname.slice(1)) || user, user };
  } catch {
    return undefined;
  }
}

interface DriverError {
  code?: string;
  message: string;
  /** A WebSocket's error event (the Neon driver) carries no message of its own. */
  webSocket: boolean;
}

/** The error that says what happened, under the wrappers drizzle and Node put around it. */
function driverError(error: unknown): DriverError {
  let current = error;
  for (let depth = 0; depth < 5; depth++) {
    if (typeof current !== "object" || current === null) break;
    const fields = current as { query?: unknown; params?: unknown; cause?: unknown; errors?: unknown; code?: unknown };
    // DrizzleQueryError: the driver's error is its cause; its own message embeds the parameters.
    if ("query" in fields && "params" in fields && fields.cause !== undefined) {
      current = fields.cause;
      continue;
    }
    // Node tries each address of a host in turn and reports them together.
    if (current instanceof AggregateError && fields.code === undefined && Array.isArray(fields.errors) && fields.errors.length > 0) {
      current = fields.errors[0];
      continue;
    }
    break;
  }
  if (typeof current !== "object" || current === null) return { message: String(current), webSocket: false };
  const { code, message, type } = current as { code?: unknown; message?: unknown; type?: unknown };
  const webSocket = current.constructor?.name === "ErrorEvent" || (type === "error" && !(current instanceof Error));
  return { ...(typeof code === "string" ? { code } : {}), message: typeof message === "string" ? message : "", webSocket };
}

const fileProblems: Record<string, string> = {
  ENOTDIR: "a file is in the way",
  EEXIST: "a file is in the way",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
};

/** A file system error in a few words (without the path Node puts in its message), if it is a common one. */
export function fileProblem(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? fileProblems[code] : undefined;
}

function pgliteFailure(variable: string, url: string, failure: DriverError): string | undefined {
  const location = url.slice("pglite://".length);
  const where = location === "memory" || location === "" ? "in memory" : `in ${location}`;
  const file = fileProblem(failure);
  if (file) return `${variable}: cannot keep the PGlite database ${where} (${file})`;
  if (/failed to initiali[sz]e/i.test(failure.message)) {
    return `${variable}: cannot open the PGlite database ${where}: the directory is damaged or from another PGlite version; move it away to start afresh`;
  }
  return undefined;
}

/**
 * `variable: <what went wrong>` for an error from opening or first using the database at `url`
 * (which `variable` configured); undefined when the error is not about reaching the database
 * (a failing statement, say), for the caller to report as it is.
 */
export function describeDatabaseFailure(variable: string, url: string, error: unknown): string | undefined {
  const failure = driverError(error);
  if (url.startsWith("pglite://")) return pgliteFailure(variable, url, failure);
  const problem = databaseUrlProblem(variable, url);
  if (problem) return problem;
  const at = locate(url);
  if (!at) return undefined;
  const address = `${at.host}:${at.port}`;
  const line = (text: string) => `${variable}: ${text}`;
  if (failure.webSocket) return line(`cannot open a WebSocket to ${at.host} (Neon driver); is the host right and reachable?`);
  switch (failure.code) {
    case "ECONNREFUSED":
      return line(`cannot connect to ${address} (connection refused); is the server running?`);
    case "ENOTFOUND":
      return line(`cannot connect to ${address} (no such host); is the host name right?`);
    case "EAI_AGAIN":
      return line(`cannot connect to ${address} (the host name could not be looked up); is the network up?`);
    case "ETIMEDOUT":
      return line(`cannot connect to ${address} (timed out); is the host reachable?`);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return line(`cannot connect to ${address} (no route to the host); is the host reachable?`);
    case "ECONNRESET":
      return line(`the server at ${address} closed the connection; is it a PostgreSQL server?`);
    case "3D000":
      return line(`database "${at.database}" does not exist`);
    case "28P01":
      return line(`the server at ${address} refused the password of user "${at.user}"`);
    case "28000":
      // "role … does not exist", or no pg_hba.conf entry: the server's own words say which.
      return line(`the server at ${address} refused the login: ${redactSecrets(failure.message)}`);
    case "53300":
      return line(`the server at ${address} has no free connections (too many clients)`);
    case "57P03":
      return line(`the server at ${address} is starting up or shutting down; try again shortly`);
    case "42501":
      return line(`user "${at.user}" lacks a privilege: ${redactSecrets(failure.message)}`);
  }
  if (/connection timeout|timeout expired/i.test(failure.message)) return line(`cannot connect to ${address} (timed out); is the host reachable?`);
  if (/Connection terminated unexpectedly/i.test(failure.message)) return line(`the server at ${address} closed the connection; is it a PostgreSQL server?`);
  if (/does not support SSL/i.test(failure.message)) return line(`the server at ${address} does not support SSL; remove sslmode from the URL`);
  if (failure.code?.startsWith("ERR_TLS") || /certificate|\bSSL\b|\bTLS\b/.test(failure.message)) {
    return line(`TLS with ${address} failed: ${redactSecrets(failure.message)}`);
  }
  return undefined;
}
