import { describeJobs, type Jobs } from "@enclave/core/jobs";

/**
 * Prints the jobs of the services named on the command line as JSON (name, kind, pattern or
 * schedule, description): what infra/jobs.ts gives the deployment plan.
 *   node --import tsx functions/describe-jobs.ts auth profile
 */
const described: Record<string, ReturnType<typeof describeJobs>> = {};
for (const service of process.argv.slice(2)) {
  const module = (await import(`@enclave/${service}/jobs`)) as Record<string, Jobs>;
  const jobs = module[`${service}Jobs`];
  if (!jobs) throw new Error(`packages/${service}/src/jobs.ts must export ${service}Jobs (defineJobs)`);
  described[service] = describeJobs(jobs);
}
process.stdout.write(`${JSON.stringify(described)}\n`);
