import { databaseUrlProblem } from "@enclave/core/db/failures";
import type { SplitMode } from "./split";

export const usage = [
  "usage: npm run db:split -- --from <shared database URL> [--source-schema public] [--dry-run | --verify-only] [--batch 5000]",
  "  targets: AUTH_DATABASE_URL, PROFILE_DATABASE_URL, PAYMENTS_DATABASE_URL, ADMIN_DATABASE_URL (or DATABASE_URL), already migrated",
  "  --dry-run       compare and report what would be copied; write nothing",
  "  --verify-only   compare source and targets; exit 1 on any difference",
].join("\n");

/** A command line that cannot be run as typed: one line, then the usage, exit 2. */
export class UsageError extends Error {}

/** `db:split`'s arguments, checked. */
export function parseArguments(args: string[]) {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--dry-run" || arg === "--verify-only") {
      flags.add(arg.slice(2));
      continue;
    }
    if (!["--from", "--source-schema", "--batch"].includes(arg)) {
      throw new UsageError(arg.startsWith("--") ? `db:split has no option ${arg}` : `db:split takes no argument "${arg}"`);
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
    values.set(arg.slice(2), value);
    i++;
  }
  const from = values.get("from");
  if (!from) throw new UsageError("db:split needs --from <shared database URL>");
  // The scheme is not echoed: in "user:password@host" a parser may take the user for one.
  if (from.startsWith("pglite://") || databaseUrlProblem("--from", from))
    throw new UsageError("--from must be a PostgreSQL URL: postgres://<user>@<host>:<port>/<database>");
  const sourceSchema = values.get("source-schema") ?? "public";
  if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(sourceSchema)) throw new UsageError("--source-schema must be a schema name (letters, digits, underscores)");
  const batchText = values.get("batch") ?? "5000";
  const batch = Number(batchText);
  if (!/^\d+$/.test(batchText) || batch < 1 || batch > 100_000) throw new UsageError("--batch must be a whole number from 1 to 100000");
  if (flags.has("dry-run") && flags.has("verify-only")) throw new UsageError("--dry-run and --verify-only exclude each other");
  const mode: SplitMode = flags.has("dry-run") ? "dry-run" : flags.has("verify-only") ? "verify-only" : "copy";
  return { from, sourceSchema, batch, mode };
}
