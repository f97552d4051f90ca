/**
 * The statement a peer runs: the one the measured route sent, captured by the local endpoint, in
 * BENCH_STATEMENT as `{query, params}`.
 */
export interface Statement {
  query: string;
  params: unknown[];
}

export function benchStatement(): Statement {
  return JSON.parse(process.env.BENCH_STATEMENT ?? '{"query":"select 1","params":[]}') as Statement;
}

/** Where the local Neon endpoint is (`127.0.0.1:<port>/v1`), and the database URL. */
export const benchNeonProxy = process.env.BENCH_NEON_PROXY ?? "";
export const benchDatabaseUrl = process.env.BENCH_DATABASE_URL ?? "";
