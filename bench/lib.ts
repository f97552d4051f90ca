import { spawn } from "node:child_process";

/** Nearest-rank percentile of unsorted samples. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
export const median = (values: number[]) => percentile(values, 50);
export const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export interface ProcessRun {
  ms: number;
  /** CPU time (user + system) the process reported for itself on its last stderr line, when it did. */
  cpuMs?: number;
  /** Where the wall time went, when the process reported it on that line too (bench/cold-start.ts). */
  phases?: { startup: number; import: number; request: number };
  stderr: string;
}

/**
 * Runs node with `args` and waits for it to exit. Asynchronous on purpose: servers the child talks
 * to (the local Neon endpoint) run in this process and must keep answering meanwhile.
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    const chunks: Buffer[] = [];
    child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const stderr = Buffer.concat(chunks).toString("utf8");
      if (code !== 0) return reject(new Error(`node ${args.join(" ")} exited ${code}: ${stderr.slice(0, 800)}`));
      const last = stderr.trim().split("\n").at(-1) ?? "";
      let cpuMs: number | undefined;
      let phases: ProcessRun["phases"];
      try {
        const usage = JSON.parse(last) as { user?: number; system?: number; phases?: ProcessRun["phases"] };
        if (typeof usage.user === "number" && typeof usage.system === "number") cpuMs = (usage.user + usage.system) / 1000;
        phases = usage.phases;
      } catch {
        cpuMs = undefined;
      }
      resolve({ ms, stderr, ...(cpuMs === undefined ? {} : { cpuMs }), ...(phases ? { phases } : {}) });
    });
  });
}

/**
 * Runs every named task `runs` times, interleaved in rotating order, so load from anything else
 * on the machine falls on all of them alike; returns each one's samples.
 */
export async function interleave<T>(runs: number, tasks: Record<string, () => Promise<T>>): Promise<Record<string, T[]>> {
  const names = Object.keys(tasks);
  const samples: Record<string, T[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length] as string;
      (samples[name] as T[]).push(await (tasks[name] as () => Promise<T>)());
    }
  }
  return samples;
}

/** Is a PostgreSQL server reachable at `url`? */
export async function serverReachable(url: string | undefined): Promise<boolean> {
  if (!url) return false;
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
