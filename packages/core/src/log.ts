export type LogLevel = "debug" | "info" | "warn" | "error";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = order.info;
let sink: (line: string) => void = (line) => process.stdout.write(`${line}\n`);

export function configureLog(options: { level?: LogLevel; sink?: (line: string) => void }): void {
  if (options.level) threshold = order[options.level];
  if (options.sink) sink = options.sink;
}

/**
 * One JSON object per line. Callers pass only fields that are safe to keep: never bodies,
 * headers, passwords, tokens or hashes.
 */
export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < threshold) return;
  sink(JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields }));
}

/** A statement, as opposed to a driver message that merely names a table or a column. */
const sqlStatement = /\b(select\b[\s\S]*\bfrom\b|insert\s+into\b|update\b[\s\S]*\bset\b|delete\s+from\b|values\s*\()/i;

/**
 * Text from an error with what may be secret taken out: the user and password of URLs, and in
 * SQL the literals and comments (where a value or a credential would sit). Identifiers stay:
 * they are what makes a failing statement recognisable.
 */
export function redactSecrets(text: string): string {
  let safe = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, "$1…@");
  if (sqlStatement.test(safe)) {
    safe = safe
      .replace(/'(?:[^']|'')*'?/g, "'…'")
      .replace(/--[^\n]*/g, "--…")
      .replace(/\/\*[\s\S]*?(\*\/|$)/g, "/*…*/");
  }
  return safe;
}

/** What of an error is safe to log: names, codes and driver messages, never query parameters. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { error: redactSecrets(String(error)) };
  const cause = (error as { cause?: unknown }).cause;
  // DrizzleQueryError's own message and stack embed the query parameters (password hashes, token
  // hashes): log only its cause. Its `name` is plain "Error", so it is recognised by its fields.
  if ("query" in error && "params" in error) {
    if (!(cause instanceof Error)) return { error: "DrizzleQueryError" };
    return { error: cause.name, message: redactSecrets(cause.message), code: (cause as { code?: string }).code };
  }
  // Frames only: the stack's first lines repeat the message, which may span several lines.
  const frames = (error.stack ?? "")
    .split("\n")
    .filter((line) => /^\s+at /.test(line))
    .slice(0, 5);
  return { error: error.name, message: redactSecrets(error.message), stack: frames.join("\n") };
}
