import { authJobs } from "@enclave/auth/jobs";
import { jobLambdas, selectJob } from "@enclave/core/job-handler";

/** Every background job of auth; JOB_NAME picks the one a deployed function runs. */
const deployed = () => import("@enclave/auth/deployed");
export const jobs = jobLambdas("auth", authJobs, async () => (await deployed()).authContext);
export const handler = selectJob("auth", jobs, async () => (await deployed()).authConfig.JOB_NAME);
