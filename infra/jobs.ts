import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { JobDescriptor } from "@enclave/core/jobs";

/**
 * The jobs each service declares (`packages/<service>/src/jobs.ts`), as data. Jobs are declared
 * beside the code they run, so reading them means loading that code: it is done in a child
 * process (`functions/describe-jobs.ts`), and the SST program itself loads no application code.
 * `root` is the repository root (`$cli.paths.root` in the SST program).
 */
export function declaredJobs(root: string, services: string[]): Record<string, JobDescriptor[]> {
  let output: string;
  try {
    output = execFileSync(process.execPath, ["--import", "tsx", join(root, "functions", "describe-jobs.ts"), ...services], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "" },
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`could not read the services' jobs (functions/describe-jobs.ts): ${stderr || (error as Error).message}`);
  }
  return JSON.parse(output) as Record<string, JobDescriptor[]>;
}
