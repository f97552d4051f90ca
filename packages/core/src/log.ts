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

/** What of an error is safe to log: names, codes and driver messages, never query parameters. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { error: String(error) };
  const cause = (error as { cause?: unknown }).cause;
  // DrizzleQueryError's own message and stack embed the query parameters (password hashes, token
  // hashes): log only its cause. Its `name` is plain "Error", so it is recognised by its fields.
  if ("query" in error && "params" in error) {
    if (!(cause instanceof Error)) return { error: "DrizzleQueryError" };
    return { error: cause.name, message: cause.message, code: (cause as { code?: string }).code };
  }
  return { error: error.name, message: error.message, stack: error.stack?.split("\n").slice(1, 6).join("\n") };
}
